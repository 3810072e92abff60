// Ledger transactions: the typed bodies, the canonical signing encoding, signing and strict
// decoding of untrusted wire JSON.
//
// Canonical encoding (docs/protocols.md, "Transactions"):
//   signing bytes = "mercato-tx-v1\n" + canonical JSON of
//       {"body":{...},"chain":"<chain id>","from":"<address>","kind":"<kind>","nonce":N}
//   canonical JSON = object keys sorted bytewise, no insignificant whitespace, integers only
//   (no floats, no exponents), strings as UTF-8 with only the escapes JSON requires.
//   tx hash = hex BLAKE2b-256(signing bytes); signature = Ed25519(signing bytes).
// Wire form: {"tx":{chain,kind,from,nonce,body}, "signer":"<hex pk>", "sig":"<hex sig>"}.
// `from` must be the address of `signer`; `nonce` must be the account's nonce + 1, which makes
// every replay fail.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/money.hpp"
#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "ledger/market.hpp"
#include "ledger/types.hpp"

namespace mercato::ledger {

enum class TxKind {
  kTransfer,
  kMint,
  kProviderRegister,
  kProviderUpdate,
  kProviderDeregister,
  kEscrowOpen,
  kEscrowDeposit,
  kEscrowClaim,
  kEscrowClose,
  kOrderCreate,
  kOrderClose,
  kBidCreate,
  kBidClose,
  kLeaseCreate,
  kAuditorAttest,
};
std::string_view txKindName(TxKind k);  // "transfer", "provider.register", "escrow.claim", ...
Result<TxKind> parseTxKind(std::string_view name);

struct TransferBody {
  std::string to;
  Micros amount = 0;
};
struct MintBody {  // dev mode only
  std::string to;
  Micros amount = 0;
};
struct ProviderBody {  // register and update
  std::string nodeKey;
  std::string gatewayUrl;
  std::map<std::string, std::string> attributes;
  Capacity capacity;
  Prices prices;
};
struct DeregisterBody {};
struct EscrowOpenBody {
  std::string provider;
  Micros deposit = 0;
  // When set, the open fails unless the provider's current prices equal these, so a provider
  // cannot change its prices between the publisher's choice and the open.
  std::optional<Prices> expectTerms;
};
struct EscrowDepositBody {
  std::string escrow;
  Micros amount = 0;
};
struct EscrowClaimBody {
  std::string escrow;
  Usage usage;  // cumulative
};
struct EscrowCloseBody {
  std::string escrow;
};

// Marketplace (market.hpp).
struct OrderCreateBody {
  OrderRequirements requirements;
  PriceCaps maxPrice;
  Micros deposit = 0;  // > 0; locked from the publisher's balance
  int64_t ttlMs = 0;   // > 0 and at most the ledger's maximum order TTL
};
struct OrderCloseBody {  // by the publisher, while the order is open
  std::string order;
};
struct BidCreateBody {  // by an active provider, on an open order
  std::string order;
  Prices price;  // within the order's caps
  int64_t ttlMs = 0;
};
struct BidCloseBody {  // by the bidding provider, while the bid is open
  std::string bid;
};
struct LeaseCreateBody {  // by the order's publisher: accepts an open bid
  std::string bid;
};
struct AuditorAttestBody {  // by any account acting as auditor; replaces its earlier claims
  std::string provider;
  std::map<std::string, std::string> attributes;  // empty = revoke
};

using TxBody =
    std::variant<TransferBody, MintBody, ProviderBody, DeregisterBody, EscrowOpenBody,
                 EscrowDepositBody, EscrowClaimBody, EscrowCloseBody, OrderCreateBody,
                 OrderCloseBody, BidCreateBody, BidCloseBody, LeaseCreateBody, AuditorAttestBody>;

struct Tx {
  std::string chainId;
  TxKind kind = TxKind::kTransfer;
  std::string from;
  uint64_t nonce = 0;
  TxBody body;
};

struct SignedTx {
  Tx tx;
  crypto::PublicKey signer;
  crypto::Signature signature;
  std::string hash;  // hex BLAKE2b-256 of signingBytes(tx); filled by signTx/decodeSignedTx
  // signingBytes(tx), computed once by signTx/decodeSignedTx so verification and logging do
  // not re-encode. Empty on a hand-built SignedTx (then it is recomputed on use).
  std::string signing;
};

// Body <-> JSON.
nlohmann::json bodyToJson(const TxBody& body);
Result<TxBody> bodyFromJson(TxKind kind, const nlohmann::json& j);
// The kind a body variant belongs to for a new transaction (register for ProviderBody).
TxKind defaultKindFor(const TxBody& body);

// Canonical JSON; fails on floating-point numbers anywhere in `j`.
Result<std::string> canonicalJson(const nlohmann::json& j);
// "mercato-tx-v1\n" + canonical JSON of the transaction.
std::string signingBytes(const Tx& tx);
std::string txHashHex(const Tx& tx);

// Signs `tx` (whose `from` must be `id`'s address).
SignedTx signTx(Tx tx, const crypto::Identity& id);
// The wire JSON.
nlohmann::json toJson(const SignedTx& tx);
// The wire JSON as canonical text, built from the signing bytes without a JSON round trip:
// {"sig":"…","signer":"…","tx":<canonical tx>}. What the ledger stores in its log.
std::string wireText(const SignedTx& tx);
// Strict decode of untrusted wire JSON: structure, types, unknown fields, hex lengths, kind,
// body fields, address validity and from == address(signer). Does NOT verify the signature.
Result<SignedTx> decodeSignedTx(const nlohmann::json& j);
// kUnauthenticated when the signature does not verify.
Status verifySignature(const SignedTx& tx);

// The deterministic id of the escrow opened by (publisher, nonce).
std::string escrowIdFor(const std::string& publisher, uint64_t nonce);

}  // namespace mercato::ledger
