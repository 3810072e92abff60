#include "ledger/market.hpp"

#include <regex>

#include "common/strings.hpp"
#include "crypto/hash.hpp"

namespace mercato::ledger {

using nlohmann::json;

namespace {

constexpr size_t kMaxAttributes = 64;
constexpr size_t kMaxAttributeValue = 256;
constexpr size_t kMaxGroups = 32;
constexpr size_t kMaxAuditors = 8;
constexpr size_t kMaxGroupName = 63;
constexpr int64_t kMaxCount = 1000;

std::string idFor(const char* tag, const char* prefix, const std::string& who, uint64_t nonce) {
  auto h = crypto::Hasher().field(tag).field(who).u64(nonce).finish();
  return prefix + toHex(std::span<const uint8_t>(h.data(), 12));
}

json attributesJson(const std::map<std::string, std::string>& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

Result<std::string> stringField(const json& j, const char* key, const std::string& where) {
  return jsonString(j, key, where);
}

}  // namespace

std::string priceOverCaps(const Prices& p, const PriceCaps& caps) {
  const std::tuple<const char*, Micros, std::optional<Micros>> fields[] = {
      {"cpuSecond", p.cpuSecond, caps.cpuSecond},
      {"memGibSecond", p.memGibSecond, caps.memGibSecond},
      {"egressGib", p.egressGib, caps.egressGib},
      {"requests1k", p.requests1k, caps.requests1k},
      {"storageGibHour", p.storageGibHour, caps.storageGibHour},
  };
  for (const auto& [name, value, cap] : fields)
    if (cap && value > *cap)
      return std::string(name) + " " + formatAmount(value) + " is above the order's maximum " +
             formatAmount(*cap);
  return "";
}

Capacity OrderRequirements::total() const {
  Capacity c;
  for (const auto& g : resources) {
    c.cpu += g.cpu * g.count;
    c.memory += g.memory * g.count;
    c.storage += g.storage * g.count;
  }
  return c;
}

std::string orderStateName(OrderState s) {
  switch (s) {
    case OrderState::kOpen:
      return "open";
    case OrderState::kMatched:
      return "matched";
    case OrderState::kClosed:
      return "closed";
    case OrderState::kExpired:
      return "expired";
  }
  return "unknown";
}

Result<OrderState> parseOrderState(const std::string& s) {
  if (s == "open") return OrderState::kOpen;
  if (s == "matched") return OrderState::kMatched;
  if (s == "closed") return OrderState::kClosed;
  if (s == "expired") return OrderState::kExpired;
  return invalidArgument("order state '" + s + "': expected open, matched, closed or expired");
}

std::string bidStateName(BidState s) {
  switch (s) {
    case BidState::kOpen:
      return "open";
    case BidState::kWon:
      return "won";
    case BidState::kLost:
      return "lost";
    case BidState::kClosed:
      return "closed";
    case BidState::kExpired:
      return "expired";
  }
  return "unknown";
}

Result<BidState> parseBidState(const std::string& s) {
  if (s == "open") return BidState::kOpen;
  if (s == "won") return BidState::kWon;
  if (s == "lost") return BidState::kLost;
  if (s == "closed") return BidState::kClosed;
  if (s == "expired") return BidState::kExpired;
  return invalidArgument("bid state '" + s + "': expected open, won, lost, closed or expired");
}

std::string orderIdFor(const std::string& publisher, uint64_t nonce) {
  return idFor("mercato-order", "ord_", publisher, nonce);
}
std::string bidIdFor(const std::string& provider, uint64_t nonce) {
  return idFor("mercato-bid", "bid_", provider, nonce);
}

json toJson(const PriceCaps& c) {
  json j = json::object();
  if (c.cpuSecond) j["cpuSecond"] = *c.cpuSecond;
  if (c.memGibSecond) j["memGibSecond"] = *c.memGibSecond;
  if (c.egressGib) j["egressGib"] = *c.egressGib;
  if (c.requests1k) j["requests1k"] = *c.requests1k;
  if (c.storageGibHour) j["storageGibHour"] = *c.storageGibHour;
  return j;
}
json toJson(const ResourceGroup& g) {
  return {{"name", g.name},
          {"cpu", g.cpu},
          {"memory", g.memory},
          {"storage", g.storage},
          {"count", g.count}};
}
json toJson(const OrderRequirements& r) {
  json res = json::array();
  for (const auto& g : r.resources) res.push_back(toJson(g));
  json signedBy = json::array();
  for (const auto& a : r.signedBy)
    signedBy.push_back({{"auditor", a.auditor}, {"attributes", attributesJson(a.attributes)}});
  return {{"resources", res}, {"attributes", attributesJson(r.attributes)}, {"signedBy", signedBy}};
}
json toJson(const Order& o) {
  return {{"id", o.id},
          {"publisher", o.publisher},
          {"requirements", toJson(o.requirements)},
          {"maxPrice", toJson(o.maxPrice)},
          {"deposit", o.deposit},
          {"createdAt", o.createdAt},
          {"expiresAt", o.expiresAt},
          {"state", orderStateName(o.state)},
          {"lease", o.lease},
          {"closedAt", o.closedAt}};
}
json toJson(const Bid& b) {
  return {{"id", b.id},
          {"order", b.order},
          {"provider", b.provider},
          {"price", toJson(b.price)},
          {"deposit", b.deposit},
          {"createdAt", b.createdAt},
          {"expiresAt", b.expiresAt},
          {"state", bidStateName(b.state)},
          {"closedAt", b.closedAt}};
}
json toJson(const Lease& l) {
  return {{"id", l.id},
          {"order", l.order},
          {"bid", l.bid},
          {"publisher", l.publisher},
          {"provider", l.provider},
          {"price", toJson(l.price)},
          {"createdAt", l.createdAt}};
}
json toJson(const Attestation& a) {
  return {{"auditor", a.auditor},
          {"provider", a.provider},
          {"attributes", attributesJson(a.attributes)},
          {"time", a.time}};
}

Result<std::map<std::string, std::string>> attributesFromJson(const json& j,
                                                              const std::string& where) {
  if (!j.is_object()) return invalidArgument(where + ": expected an object");
  if (j.size() > kMaxAttributes)
    return invalidArgument(where + ": at most " + std::to_string(kMaxAttributes) + " attributes");
  static const std::regex kKey("[a-z0-9][a-z0-9._/-]{0,62}");
  std::map<std::string, std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!std::regex_match(it.key(), kKey))
      return invalidArgument(where + "." + it.key() +
                             ": keys are 1-63 characters of a-z 0-9 . _ / -");
    if (!it->is_string() || it->get<std::string>().size() > kMaxAttributeValue)
      return invalidArgument(where + "." + it.key() + ": expected a string of at most " +
                             std::to_string(kMaxAttributeValue) + " characters");
    out[it.key()] = it->get<std::string>();
  }
  return out;
}

Result<PriceCaps> priceCapsFromJson(const json& j, const std::string& where) {
  RETURN_IF_ERROR(jsonOnlyKeys(
      j, {"cpuSecond", "memGibSecond", "egressGib", "requests1k", "storageGibHour"}, where));
  PriceCaps c;
  const std::pair<const char*, std::optional<Micros>*> fields[] = {
      {"cpuSecond", &c.cpuSecond},           {"memGibSecond", &c.memGibSecond},
      {"egressGib", &c.egressGib},           {"requests1k", &c.requests1k},
      {"storageGibHour", &c.storageGibHour},
  };
  for (const auto& [name, slot] : fields) {
    if (!j.contains(name)) continue;
    ASSIGN_OR_RETURN(Micros v, jsonInt(j, name, where));
    *slot = v;
  }
  return c;
}

Result<OrderRequirements> requirementsFromJson(const json& j, const std::string& where) {
  RETURN_IF_ERROR(jsonOnlyKeys(j, {"resources", "attributes", "signedBy"}, where));
  OrderRequirements r;
  auto res = j.find("resources");
  if (res == j.end() || !res->is_array() || res->empty())
    return invalidArgument(where + ".resources: expected a non-empty array of resource groups");
  if (res->size() > kMaxGroups)
    return invalidArgument(where + ".resources: at most " + std::to_string(kMaxGroups) + " groups");
  for (size_t i = 0; i < res->size(); ++i) {
    const json& g = (*res)[i];
    const std::string w = where + ".resources[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(jsonOnlyKeys(g, {"name", "cpu", "memory", "storage", "count"}, w));
    ResourceGroup group;
    ASSIGN_OR_RETURN(group.name, stringField(g, "name", w));
    if (group.name.empty() || group.name.size() > kMaxGroupName)
      return invalidArgument(w + ".name: expected 1-" + std::to_string(kMaxGroupName) +
                             " characters");
    ASSIGN_OR_RETURN(group.cpu, jsonInt(g, "cpu", w));
    ASSIGN_OR_RETURN(group.memory, jsonInt(g, "memory", w));
    ASSIGN_OR_RETURN(group.storage, jsonInt(g, "storage", w));
    ASSIGN_OR_RETURN(group.count, jsonInt(g, "count", w));
    if (group.cpu == 0 && group.memory == 0)
      return invalidArgument(w + ": asks for zero resources (cpu and memory are both 0)");
    if (group.count < 1 || group.count > kMaxCount)
      return invalidArgument(w + ".count: expected 1-" + std::to_string(kMaxCount));
    // Keep totals far from overflow: 1,000 instances of at most 2^40 each.
    if (group.cpu > (int64_t{1} << 40) || group.memory > (int64_t{1} << 50) ||
        group.storage > (int64_t{1} << 50))
      return invalidArgument(w + ": resources out of range");
    for (const auto& other : r.resources)
      if (other.name == group.name)
        return invalidArgument(w + ".name: '" + group.name + "' appears twice");
    r.resources.push_back(std::move(group));
  }
  if (auto a = j.find("attributes"); a != j.end()) {
    ASSIGN_OR_RETURN(r.attributes, attributesFromJson(*a, where + ".attributes"));
  }
  if (auto s = j.find("signedBy"); s != j.end()) {
    if (!s->is_array() || s->size() > kMaxAuditors)
      return invalidArgument(where + ".signedBy: expected an array of at most " +
                             std::to_string(kMaxAuditors) + " auditor requirements");
    for (size_t i = 0; i < s->size(); ++i) {
      const std::string w = where + ".signedBy[" + std::to_string(i) + "]";
      RETURN_IF_ERROR(jsonOnlyKeys((*s)[i], {"auditor", "attributes"}, w));
      AuditorRequirement req;
      ASSIGN_OR_RETURN(req.auditor, stringField((*s)[i], "auditor", w));
      if (!(*s)[i].contains("attributes"))
        return invalidArgument(w + ".attributes: required field is missing");
      ASSIGN_OR_RETURN(req.attributes,
                       attributesFromJson((*s)[i]["attributes"], w + ".attributes"));
      if (req.attributes.empty())
        return invalidArgument(w + ".attributes: name at least one attribute the auditor signs");
      r.signedBy.push_back(std::move(req));
    }
  }
  return r;
}

Result<Order> orderFromJson(const json& j) {
  const std::string w = "order";
  Order o;
  ASSIGN_OR_RETURN(o.id, jsonString(j, "id", w));
  ASSIGN_OR_RETURN(o.publisher, jsonString(j, "publisher", w));
  if (!j.contains("requirements")) return invalidArgument("order.requirements: missing");
  ASSIGN_OR_RETURN(o.requirements, requirementsFromJson(j["requirements"], "order.requirements"));
  if (!j.contains("maxPrice")) return invalidArgument("order.maxPrice: missing");
  ASSIGN_OR_RETURN(o.maxPrice, priceCapsFromJson(j["maxPrice"], "order.maxPrice"));
  ASSIGN_OR_RETURN(o.deposit, jsonInt(j, "deposit", w));
  ASSIGN_OR_RETURN(o.createdAt, jsonInt(j, "createdAt", w));
  ASSIGN_OR_RETURN(o.expiresAt, jsonInt(j, "expiresAt", w));
  ASSIGN_OR_RETURN(std::string st, jsonString(j, "state", w));
  ASSIGN_OR_RETURN(o.state, parseOrderState(st));
  ASSIGN_OR_RETURN(o.lease, jsonString(j, "lease", w));
  ASSIGN_OR_RETURN(o.closedAt, jsonInt(j, "closedAt", w));
  return o;
}

Result<Bid> bidFromJson(const json& j) {
  const std::string w = "bid";
  Bid b;
  ASSIGN_OR_RETURN(b.id, jsonString(j, "id", w));
  ASSIGN_OR_RETURN(b.order, jsonString(j, "order", w));
  ASSIGN_OR_RETURN(b.provider, jsonString(j, "provider", w));
  if (!j.contains("price")) return invalidArgument("bid.price: missing");
  ASSIGN_OR_RETURN(b.price, pricesFromJson(j["price"], "bid.price"));
  ASSIGN_OR_RETURN(b.deposit, jsonInt(j, "deposit", w));
  ASSIGN_OR_RETURN(b.createdAt, jsonInt(j, "createdAt", w));
  ASSIGN_OR_RETURN(b.expiresAt, jsonInt(j, "expiresAt", w));
  ASSIGN_OR_RETURN(std::string st, jsonString(j, "state", w));
  ASSIGN_OR_RETURN(b.state, parseBidState(st));
  ASSIGN_OR_RETURN(b.closedAt, jsonInt(j, "closedAt", w));
  return b;
}

Result<Lease> leaseFromJson(const json& j) {
  const std::string w = "lease";
  Lease l;
  ASSIGN_OR_RETURN(l.id, jsonString(j, "id", w));
  ASSIGN_OR_RETURN(l.order, jsonString(j, "order", w));
  ASSIGN_OR_RETURN(l.bid, jsonString(j, "bid", w));
  ASSIGN_OR_RETURN(l.publisher, jsonString(j, "publisher", w));
  ASSIGN_OR_RETURN(l.provider, jsonString(j, "provider", w));
  if (!j.contains("price")) return invalidArgument("lease.price: missing");
  ASSIGN_OR_RETURN(l.price, pricesFromJson(j["price"], "lease.price"));
  ASSIGN_OR_RETURN(l.createdAt, jsonInt(j, "createdAt", w));
  return l;
}

Result<Attestation> attestationFromJson(const json& j) {
  const std::string w = "attestation";
  Attestation a;
  ASSIGN_OR_RETURN(a.auditor, jsonString(j, "auditor", w));
  ASSIGN_OR_RETURN(a.provider, jsonString(j, "provider", w));
  if (!j.contains("attributes")) return invalidArgument("attestation.attributes: missing");
  ASSIGN_OR_RETURN(a.attributes, attributesFromJson(j["attributes"], "attestation.attributes"));
  ASSIGN_OR_RETURN(a.time, jsonInt(j, "time", w));
  return a;
}

}  // namespace mercato::ledger
