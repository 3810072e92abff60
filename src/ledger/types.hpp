// Ledger state types: accounts, the provider registry, escrows, transaction records and events.
// These are the values every ledger backend returns and the JSON shapes of the HTTP API
// (docs/protocols.md documents the JSON).
//
// Money is integer micro-units (common/money.hpp). Usage is cumulative and integer.
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/money.hpp"
#include "common/status.hpp"
#include "common/units.hpp"

namespace mercato::ledger {

// The price table of a provider, and the terms snapshotted into an escrow.
//
// storageGibHour came after the first ledgers: its JSON key is written only when non-zero and
// read as 0 when absent, so every transaction, record and state root from before it encodes to
// the same bytes (the canonical encoding re-encodes the typed value; docs/protocols.md).
struct Prices {
  Micros cpuSecond = 0;       // per CPU-second
  Micros memGibSecond = 0;    // per GiB-second of memory
  Micros egressGib = 0;       // per GiB of egress
  Micros requests1k = 0;      // per 1,000 requests
  Micros storageGibHour = 0;  // per GiB-hour of an instance's disk (its writable layer)
  bool operator==(const Prices&) const = default;
};

struct Capacity {
  Millicores cpu = 0;
  Bytes memory = 0;
  Bytes storage = 0;
  bool operator==(const Capacity&) const = default;
};

// Cumulative metered usage of one escrow. Every field is monotonic across claims.
// storageMibSeconds is optional in JSON like Prices::storageGibHour (absent = 0, written only
// when non-zero).
struct Usage {
  int64_t cpuMillis = 0;      // CPU-milliseconds
  int64_t memMibSeconds = 0;  // MiB-seconds of memory
  int64_t egressBytes = 0;
  int64_t requests = 0;
  int64_t storageMibSeconds = 0;  // MiB-seconds of disk used (bytes on disk integrated over time)
  bool operator==(const Usage&) const = default;
};

// Every Usage field with its JSON name. Rules that treat the fields alike (claims never go
// down, a provider never claims below what it claimed) walk this list, so a field added to
// Usage is added here once rather than to each of them.
struct UsageField {
  const char* name;
  int64_t Usage::*member;
};
inline constexpr UsageField kUsageFields[] = {
    {"cpuMillis", &Usage::cpuMillis},
    {"memMibSeconds", &Usage::memMibSeconds},
    {"egressBytes", &Usage::egressBytes},
    {"requests", &Usage::requests},
    {"storageMibSeconds", &Usage::storageMibSeconds},
};
// The field-wise maximum of `a` and `b`.
Usage maxUsage(const Usage& a, const Usage& b);

// What `usage` costs under `terms`, rounded down per component. Saturates at INT64_MAX.
Micros computeOwed(const Prices& terms, const Usage& usage);

struct Account {
  std::string address;
  Micros balance = 0;
  uint64_t nonce = 0;  // the nonce of the last applied transaction; the next must be nonce+1
};

struct ProviderRecord {
  std::string owner;    // account address
  std::string nodeKey;  // hex Ed25519 public key of the provider node (TLS + bundle sealing)
  std::string gatewayUrl;
  std::map<std::string, std::string> attributes;
  Capacity capacity;
  Prices prices;
  bool active = true;
  int64_t registeredAt = 0;  // ms since epoch (ledger time)
  int64_t updatedAt = 0;
};

enum class EscrowState { kOpen, kExhausted, kClosing, kClosed };
std::string escrowStateName(EscrowState s);
Result<EscrowState> parseEscrowState(const std::string& s);

struct Escrow {
  std::string id;
  std::string publisher;
  std::string provider;
  Prices terms;
  Micros deposited = 0;
  Micros claimed = 0;   // paid to the provider so far
  Micros refunded = 0;  // returned to the publisher at close
  Usage usage;
  Micros owed = 0;  // computeOwed(terms, usage); owed - claimed is unpaid when exhausted
  EscrowState state = EscrowState::kOpen;
  int64_t openedAt = 0;
  int64_t closeDeadline = 0;  // while closing: when the remainder is refunded
  int64_t closedAt = 0;
  Micros balance() const { return deposited - claimed - refunded; }
};

// One entry of the hash-chained transaction log.
struct TxRecord {
  uint64_t seq = 0;
  std::string hash;       // hex BLAKE2b-256 of the signing bytes (or of the system body)
  std::string entryHash;  // hex chain hash: H(prev entryHash, seq, time, kind, body)
  int64_t time = 0;
  std::string kind;
  std::string sender;   // "" for genesis/system entries
  nlohmann::json body;  // the signed transaction as submitted, or the system entry body
};

struct Event {
  uint64_t seq = 0;
  uint64_t txSeq = 0;
  int64_t time = 0;
  std::string type;  // "escrow.claimed", ...
  nlohmann::json data;
};

// The result of an accepted transaction.
struct TxReceipt {
  std::string hash;
  uint64_t seq = 0;
  int64_t time = 0;
  nlohmann::json result;  // kind-specific: {"escrow": id, "paid": n, "state": "..."}
};

struct LedgerInfo {
  std::string chainId;
  std::string backend;
  bool devMode = false;
  int64_t closeGraceMs = 0;
  Micros bidDeposit = 0;  // locked per open bid
  int64_t maxOrderTtlMs = 0;
  uint64_t headSeq = 0;
  std::string headHash;
  uint64_t eventSeq = 0;
  Micros totalSupply = 0;
  std::string stateRoot;  // at headSeq
};

// JSON forms (the HTTP API's bodies).
nlohmann::json toJson(const Prices& p);
nlohmann::json toJson(const Capacity& c);
nlohmann::json toJson(const Usage& u);
nlohmann::json toJson(const Account& a);
nlohmann::json toJson(const ProviderRecord& p);
nlohmann::json toJson(const Escrow& e);
nlohmann::json toJson(const TxRecord& r);
nlohmann::json toJson(const Event& e);
nlohmann::json toJson(const TxReceipt& r);
nlohmann::json toJson(const LedgerInfo& i);

// Strict parsers: every required field must be present with the right type (the optional ones
// are Prices::storageGibHour and Usage::storageMibSeconds, 0 when absent) and no other field may
// be; errors name the field path under `where` ("body.prices.cpuSecond: must not be negative").
Result<Prices> pricesFromJson(const nlohmann::json& j, const std::string& where);
Result<Capacity> capacityFromJson(const nlohmann::json& j, const std::string& where);
Result<Usage> usageFromJson(const nlohmann::json& j, const std::string& where);
Result<Account> accountFromJson(const nlohmann::json& j);
Result<ProviderRecord> providerFromJson(const nlohmann::json& j);
Result<Escrow> escrowFromJson(const nlohmann::json& j);
Result<TxRecord> txRecordFromJson(const nlohmann::json& j);
Result<Event> eventFromJson(const nlohmann::json& j);
Result<TxReceipt> receiptFromJson(const nlohmann::json& j);
Result<LedgerInfo> infoFromJson(const nlohmann::json& j);

// Field readers for strict JSON parsing, shared by the transaction decoder.
Result<int64_t> jsonInt(const nlohmann::json& obj, const char* key, const std::string& where,
                        bool nonNegative = true);
// As jsonInt, but an absent `key` reads as 0 (fields added to a shape after it was first used).
Result<int64_t> optionalJsonInt(const nlohmann::json& obj, const char* key,
                                const std::string& where, bool nonNegative = true);
Result<std::string> jsonString(const nlohmann::json& obj, const char* key,
                               const std::string& where);
// Fails when `obj` has a key outside `allowed`, naming it.
Status jsonOnlyKeys(const nlohmann::json& obj, std::initializer_list<const char*> allowed,
                    const std::string& where);

}  // namespace mercato::ledger
