#include "ledger/types.hpp"

#include <algorithm>
#include <limits>

namespace mercato::ledger {

using nlohmann::json;

Micros computeOwed(const Prices& t, const Usage& u) {
  // Each term is rounded down on its own, so a claim never charges for usage not yet complete.
  __int128 owed = 0;
  owed += static_cast<__int128>(u.cpuMillis) * t.cpuSecond / 1000;
  owed += static_cast<__int128>(u.memMibSeconds) * t.memGibSecond / 1024;
  owed += static_cast<__int128>(u.egressBytes) * t.egressGib / (int64_t{1} << 30);
  owed += static_cast<__int128>(u.requests) * t.requests1k / 1000;
  owed += static_cast<__int128>(u.storageMibSeconds) * t.storageGibHour / (1024 * 3600);
  if (owed > std::numeric_limits<Micros>::max()) return std::numeric_limits<Micros>::max();
  return static_cast<Micros>(owed);
}

Usage maxUsage(const Usage& a, const Usage& b) {
  Usage out;
  for (const auto& f : kUsageFields) out.*f.member = std::max(a.*f.member, b.*f.member);
  return out;
}

std::string escrowStateName(EscrowState s) {
  switch (s) {
    case EscrowState::kOpen:
      return "open";
    case EscrowState::kExhausted:
      return "exhausted";
    case EscrowState::kClosing:
      return "closing";
    case EscrowState::kClosed:
      return "closed";
  }
  return "unknown";
}

Result<EscrowState> parseEscrowState(const std::string& s) {
  if (s == "open") return EscrowState::kOpen;
  if (s == "exhausted") return EscrowState::kExhausted;
  if (s == "closing") return EscrowState::kClosing;
  if (s == "closed") return EscrowState::kClosed;
  return invalidArgument("escrow state '" + s + "': expected open, exhausted, closing or closed");
}

// Fields added after the first ledgers are written only when non-zero: an old value then
// encodes to exactly its old bytes, which keeps old signatures, tx hashes and state roots.
json toJson(const Prices& p) {
  json j = {{"cpuSecond", p.cpuSecond},
            {"memGibSecond", p.memGibSecond},
            {"egressGib", p.egressGib},
            {"requests1k", p.requests1k}};
  if (p.storageGibHour != 0) j["storageGibHour"] = p.storageGibHour;
  return j;
}
json toJson(const Capacity& c) {
  return {{"cpu", c.cpu}, {"memory", c.memory}, {"storage", c.storage}};
}
json toJson(const Usage& u) {
  json j = {{"cpuMillis", u.cpuMillis},
            {"memMibSeconds", u.memMibSeconds},
            {"egressBytes", u.egressBytes},
            {"requests", u.requests}};
  if (u.storageMibSeconds != 0) j["storageMibSeconds"] = u.storageMibSeconds;
  return j;
}
json toJson(const Account& a) {
  return {{"address", a.address}, {"balance", a.balance}, {"nonce", a.nonce}};
}
json toJson(const ProviderRecord& p) {
  return {
      {"owner", p.owner},           {"nodeKey", p.nodeKey},           {"gatewayUrl", p.gatewayUrl},
      {"attributes", p.attributes}, {"capacity", toJson(p.capacity)}, {"prices", toJson(p.prices)},
      {"active", p.active},         {"registeredAt", p.registeredAt}, {"updatedAt", p.updatedAt}};
}
json toJson(const Escrow& e) {
  return {{"id", e.id},
          {"publisher", e.publisher},
          {"provider", e.provider},
          {"terms", toJson(e.terms)},
          {"deposited", e.deposited},
          {"claimed", e.claimed},
          {"refunded", e.refunded},
          {"balance", e.balance()},
          {"usage", toJson(e.usage)},
          {"owed", e.owed},
          {"state", escrowStateName(e.state)},
          {"openedAt", e.openedAt},
          {"closeDeadline", e.closeDeadline},
          {"closedAt", e.closedAt}};
}
json toJson(const TxRecord& r) {
  return {{"seq", r.seq},   {"hash", r.hash}, {"entryHash", r.entryHash},
          {"time", r.time}, {"kind", r.kind}, {"sender", r.sender},
          {"body", r.body}};
}
json toJson(const Event& e) {
  return {{"seq", e.seq}, {"txSeq", e.txSeq}, {"time", e.time}, {"type", e.type}, {"data", e.data}};
}
json toJson(const TxReceipt& r) {
  return {{"hash", r.hash}, {"seq", r.seq}, {"time", r.time}, {"result", r.result}};
}
json toJson(const LedgerInfo& i) {
  return {{"chainId", i.chainId},       {"backend", i.backend},
          {"devMode", i.devMode},       {"closeGraceMs", i.closeGraceMs},
          {"headSeq", i.headSeq},       {"headHash", i.headHash},
          {"bidDeposit", i.bidDeposit}, {"maxOrderTtlMs", i.maxOrderTtlMs},
          {"eventSeq", i.eventSeq},     {"totalSupply", i.totalSupply},
          {"stateRoot", i.stateRoot}};
}

Result<int64_t> jsonInt(const json& obj, const char* key, const std::string& where,
                        bool nonNegative) {
  const std::string field = where.empty() ? key : where + "." + key;
  if (!obj.is_object()) return invalidArgument(where + ": expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) return invalidArgument(field + ": required field is missing");
  if (!it->is_number_integer())
    return invalidArgument(field + ": expected an integer, got " + std::string(it->type_name()));
  int64_t v;
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return invalidArgument(field + ": integer out of range");
    v = static_cast<int64_t>(u);
  } else {
    v = it->get<int64_t>();
  }
  if (nonNegative && v < 0) return invalidArgument(field + ": must not be negative");
  return v;
}

Result<int64_t> optionalJsonInt(const json& obj, const char* key, const std::string& where,
                                bool nonNegative) {
  if (obj.is_object() && !obj.contains(key)) return int64_t{0};
  return jsonInt(obj, key, where, nonNegative);
}

Result<std::string> jsonString(const json& obj, const char* key, const std::string& where) {
  const std::string field = where.empty() ? key : where + "." + key;
  if (!obj.is_object()) return invalidArgument(where + ": expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) return invalidArgument(field + ": required field is missing");
  if (!it->is_string())
    return invalidArgument(field + ": expected a string, got " + std::string(it->type_name()));
  return it->get<std::string>();
}

Status jsonOnlyKeys(const json& obj, std::initializer_list<const char*> allowed,
                    const std::string& where) {
  if (!obj.is_object()) return invalidArgument(where + ": expected an object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok)
      return invalidArgument((where.empty() ? "" : where + ".") + it.key() + ": unknown field");
  }
  return Status::ok();
}

namespace {
Result<bool> jsonBool(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_boolean())
    return invalidArgument(where + "." + key + ": expected true or false");
  return it->get<bool>();
}
}  // namespace

Result<Prices> pricesFromJson(const json& j, const std::string& where) {
  RETURN_IF_ERROR(jsonOnlyKeys(
      j, {"cpuSecond", "memGibSecond", "egressGib", "requests1k", "storageGibHour"}, where));
  Prices p;
  ASSIGN_OR_RETURN(p.cpuSecond, jsonInt(j, "cpuSecond", where));
  ASSIGN_OR_RETURN(p.memGibSecond, jsonInt(j, "memGibSecond", where));
  ASSIGN_OR_RETURN(p.egressGib, jsonInt(j, "egressGib", where));
  ASSIGN_OR_RETURN(p.requests1k, jsonInt(j, "requests1k", where));
  ASSIGN_OR_RETURN(p.storageGibHour, optionalJsonInt(j, "storageGibHour", where));
  return p;
}

Result<Capacity> capacityFromJson(const json& j, const std::string& where) {
  RETURN_IF_ERROR(jsonOnlyKeys(j, {"cpu", "memory", "storage"}, where));
  Capacity c;
  ASSIGN_OR_RETURN(c.cpu, jsonInt(j, "cpu", where));
  ASSIGN_OR_RETURN(c.memory, jsonInt(j, "memory", where));
  ASSIGN_OR_RETURN(c.storage, jsonInt(j, "storage", where));
  return c;
}

Result<Usage> usageFromJson(const json& j, const std::string& where) {
  RETURN_IF_ERROR(jsonOnlyKeys(
      j, {"cpuMillis", "memMibSeconds", "egressBytes", "requests", "storageMibSeconds"}, where));
  Usage u;
  ASSIGN_OR_RETURN(u.cpuMillis, jsonInt(j, "cpuMillis", where));
  ASSIGN_OR_RETURN(u.memMibSeconds, jsonInt(j, "memMibSeconds", where));
  ASSIGN_OR_RETURN(u.egressBytes, jsonInt(j, "egressBytes", where));
  ASSIGN_OR_RETURN(u.requests, jsonInt(j, "requests", where));
  ASSIGN_OR_RETURN(u.storageMibSeconds, optionalJsonInt(j, "storageMibSeconds", where));
  return u;
}

Result<Account> accountFromJson(const json& j) {
  Account a;
  ASSIGN_OR_RETURN(a.address, jsonString(j, "address", "account"));
  ASSIGN_OR_RETURN(a.balance, jsonInt(j, "balance", "account"));
  ASSIGN_OR_RETURN(int64_t n, jsonInt(j, "nonce", "account"));
  a.nonce = static_cast<uint64_t>(n);
  return a;
}

Result<ProviderRecord> providerFromJson(const json& j) {
  const std::string w = "provider";
  ProviderRecord p;
  ASSIGN_OR_RETURN(p.owner, jsonString(j, "owner", w));
  ASSIGN_OR_RETURN(p.nodeKey, jsonString(j, "nodeKey", w));
  ASSIGN_OR_RETURN(p.gatewayUrl, jsonString(j, "gatewayUrl", w));
  if (!j.contains("attributes") || !j["attributes"].is_object())
    return invalidArgument("provider.attributes: expected an object");
  for (auto it = j["attributes"].begin(); it != j["attributes"].end(); ++it) {
    if (!it->is_string())
      return invalidArgument("provider.attributes." + it.key() + ": expected a string");
    p.attributes[it.key()] = it->get<std::string>();
  }
  if (!j.contains("capacity"))
    return invalidArgument("provider.capacity: required field is missing");
  ASSIGN_OR_RETURN(p.capacity, capacityFromJson(j["capacity"], "provider.capacity"));
  if (!j.contains("prices")) return invalidArgument("provider.prices: required field is missing");
  ASSIGN_OR_RETURN(p.prices, pricesFromJson(j["prices"], "provider.prices"));
  ASSIGN_OR_RETURN(p.active, jsonBool(j, "active", w));
  ASSIGN_OR_RETURN(p.registeredAt, jsonInt(j, "registeredAt", w));
  ASSIGN_OR_RETURN(p.updatedAt, jsonInt(j, "updatedAt", w));
  return p;
}

Result<Escrow> escrowFromJson(const json& j) {
  const std::string w = "escrow";
  Escrow e;
  ASSIGN_OR_RETURN(e.id, jsonString(j, "id", w));
  ASSIGN_OR_RETURN(e.publisher, jsonString(j, "publisher", w));
  ASSIGN_OR_RETURN(e.provider, jsonString(j, "provider", w));
  if (!j.contains("terms")) return invalidArgument("escrow.terms: required field is missing");
  ASSIGN_OR_RETURN(e.terms, pricesFromJson(j["terms"], "escrow.terms"));
  ASSIGN_OR_RETURN(e.deposited, jsonInt(j, "deposited", w));
  ASSIGN_OR_RETURN(e.claimed, jsonInt(j, "claimed", w));
  ASSIGN_OR_RETURN(e.refunded, jsonInt(j, "refunded", w));
  if (!j.contains("usage")) return invalidArgument("escrow.usage: required field is missing");
  ASSIGN_OR_RETURN(e.usage, usageFromJson(j["usage"], "escrow.usage"));
  ASSIGN_OR_RETURN(e.owed, jsonInt(j, "owed", w));
  ASSIGN_OR_RETURN(std::string st, jsonString(j, "state", w));
  ASSIGN_OR_RETURN(e.state, parseEscrowState(st));
  ASSIGN_OR_RETURN(e.openedAt, jsonInt(j, "openedAt", w));
  ASSIGN_OR_RETURN(e.closeDeadline, jsonInt(j, "closeDeadline", w));
  ASSIGN_OR_RETURN(e.closedAt, jsonInt(j, "closedAt", w));
  return e;
}

Result<TxRecord> txRecordFromJson(const json& j) {
  const std::string w = "tx";
  TxRecord r;
  ASSIGN_OR_RETURN(int64_t seq, jsonInt(j, "seq", w));
  r.seq = static_cast<uint64_t>(seq);
  ASSIGN_OR_RETURN(r.hash, jsonString(j, "hash", w));
  ASSIGN_OR_RETURN(r.entryHash, jsonString(j, "entryHash", w));
  ASSIGN_OR_RETURN(r.time, jsonInt(j, "time", w));
  ASSIGN_OR_RETURN(r.kind, jsonString(j, "kind", w));
  ASSIGN_OR_RETURN(r.sender, jsonString(j, "sender", w));
  if (!j.contains("body")) return invalidArgument("tx.body: required field is missing");
  r.body = j["body"];
  return r;
}

Result<Event> eventFromJson(const json& j) {
  const std::string w = "event";
  Event e;
  ASSIGN_OR_RETURN(int64_t seq, jsonInt(j, "seq", w));
  ASSIGN_OR_RETURN(int64_t txSeq, jsonInt(j, "txSeq", w));
  e.seq = static_cast<uint64_t>(seq);
  e.txSeq = static_cast<uint64_t>(txSeq);
  ASSIGN_OR_RETURN(e.time, jsonInt(j, "time", w));
  ASSIGN_OR_RETURN(e.type, jsonString(j, "type", w));
  e.data = j.value("data", json::object());
  return e;
}

Result<TxReceipt> receiptFromJson(const json& j) {
  const std::string w = "receipt";
  TxReceipt r;
  ASSIGN_OR_RETURN(r.hash, jsonString(j, "hash", w));
  ASSIGN_OR_RETURN(int64_t seq, jsonInt(j, "seq", w));
  r.seq = static_cast<uint64_t>(seq);
  ASSIGN_OR_RETURN(r.time, jsonInt(j, "time", w));
  r.result = j.value("result", json::object());
  return r;
}

Result<LedgerInfo> infoFromJson(const json& j) {
  const std::string w = "info";
  LedgerInfo i;
  ASSIGN_OR_RETURN(i.chainId, jsonString(j, "chainId", w));
  ASSIGN_OR_RETURN(i.backend, jsonString(j, "backend", w));
  ASSIGN_OR_RETURN(i.devMode, jsonBool(j, "devMode", w));
  ASSIGN_OR_RETURN(i.closeGraceMs, jsonInt(j, "closeGraceMs", w));
  i.bidDeposit = j.value("bidDeposit", int64_t{0});
  i.maxOrderTtlMs = j.value("maxOrderTtlMs", int64_t{0});
  ASSIGN_OR_RETURN(int64_t head, jsonInt(j, "headSeq", w));
  i.headSeq = static_cast<uint64_t>(head);
  ASSIGN_OR_RETURN(i.headHash, jsonString(j, "headHash", w));
  ASSIGN_OR_RETURN(int64_t ev, jsonInt(j, "eventSeq", w));
  i.eventSeq = static_cast<uint64_t>(ev);
  ASSIGN_OR_RETURN(i.totalSupply, jsonInt(j, "totalSupply", w));
  ASSIGN_OR_RETURN(i.stateRoot, jsonString(j, "stateRoot", w));
  return i;
}

}  // namespace mercato::ledger
