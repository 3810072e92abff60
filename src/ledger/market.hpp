// Marketplace state on the ledger: orders, bids, leases and auditor attestations.
//
// A publisher puts an Order on the ledger (requirements, price caps, a deposit locked from its
// balance, a time to live). Providers answer with Bids (a price table at or under the caps, a
// small deposit locked from their balance, a time to live). The publisher accepts one bid, which
// creates a Lease: the order's deposit becomes an escrow (escrow id == lease id) with the bid's
// price as its terms, and the deployment continues through the sealed-bundle flow with that
// escrow. Every other open bid of the order is closed; every bid deposit is returned when its
// bid closes (won, lost, closed by the provider, or expired). An order that expires or is closed
// while open refunds its deposit.
//
// Auditors are plain accounts that sign attribute claims about a provider (auditor.attest). An
// order may require, per auditor address, attributes that auditor must have attested.
//
// JSON shapes are the HTTP API's (docs/protocols.md, "Marketplace").
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/money.hpp"
#include "common/status.hpp"
#include "ledger/types.hpp"

namespace mercato::ledger {

// Price ceilings per unit (units as in Prices); an absent field has no ceiling.
struct PriceCaps {
  std::optional<Micros> cpuSecond, memGibSecond, egressGib, requests1k, storageGibHour;
  bool operator==(const PriceCaps&) const = default;
};
// "" when `p` is within `caps`, else which field is over and by how much.
std::string priceOverCaps(const Prices& p, const PriceCaps& caps);

// One component of an order: the resources of one instance and how many instances.
struct ResourceGroup {
  std::string name;
  Millicores cpu = 0;
  Bytes memory = 0;
  Bytes storage = 0;
  int64_t count = 1;
  bool operator==(const ResourceGroup&) const = default;
};

// Attributes a named auditor must have attested for the provider.
struct AuditorRequirement {
  std::string auditor;  // account address
  std::map<std::string, std::string> attributes;
  bool operator==(const AuditorRequirement&) const = default;
};

struct OrderRequirements {
  std::vector<ResourceGroup> resources;           // at least one; each cpu or memory > 0
  std::map<std::string, std::string> attributes;  // provider registry attributes
  std::vector<AuditorRequirement> signedBy;
  bool operator==(const OrderRequirements&) const = default;
  // Sum over groups of per-instance resources times count.
  Capacity total() const;
};

enum class OrderState { kOpen, kMatched, kClosed, kExpired };
std::string orderStateName(OrderState s);
Result<OrderState> parseOrderState(const std::string& s);

struct Order {
  std::string id;  // orderIdFor(publisher, nonce)
  std::string publisher;
  OrderRequirements requirements;
  PriceCaps maxPrice;
  Micros deposit = 0;  // locked while open; becomes the lease's escrow
  int64_t createdAt = 0;
  int64_t expiresAt = 0;
  OrderState state = OrderState::kOpen;
  std::string lease;  // set when matched
  int64_t closedAt = 0;
};

enum class BidState { kOpen, kWon, kLost, kClosed, kExpired };
std::string bidStateName(BidState s);
Result<BidState> parseBidState(const std::string& s);

struct Bid {
  std::string id;  // bidIdFor(provider, nonce)
  std::string order;
  std::string provider;
  Prices price;
  Micros deposit = 0;  // the ledger's bid deposit at the time; returned when the bid closes
  int64_t createdAt = 0;
  int64_t expiresAt = 0;
  BidState state = BidState::kOpen;
  int64_t closedAt = 0;
};

struct Lease {
  std::string id;  // == the escrow id
  std::string order;
  std::string bid;
  std::string publisher;
  std::string provider;
  Prices price;
  int64_t createdAt = 0;
};

struct Attestation {
  std::string auditor;
  std::string provider;
  std::map<std::string, std::string> attributes;
  int64_t time = 0;
};

struct OrderFilter {
  std::string publisher;  // "" = any
  std::optional<OrderState> state;
  size_t limit = 1000;
};
struct BidFilter {
  std::string order;     // "" = any
  std::string provider;  // "" = any
  std::optional<BidState> state;
  size_t limit = 1000;
};
struct LeaseFilter {
  std::string publisher;  // "" = any
  std::string provider;   // "" = any
  size_t limit = 1000;
};

std::string orderIdFor(const std::string& publisher, uint64_t nonce);
std::string bidIdFor(const std::string& provider, uint64_t nonce);

nlohmann::json toJson(const PriceCaps& c);
nlohmann::json toJson(const ResourceGroup& g);
nlohmann::json toJson(const OrderRequirements& r);
nlohmann::json toJson(const Order& o);
nlohmann::json toJson(const Bid& b);
nlohmann::json toJson(const Lease& l);
nlohmann::json toJson(const Attestation& a);

// Strict parsers; errors name the field path under `where`.
Result<PriceCaps> priceCapsFromJson(const nlohmann::json& j, const std::string& where);
Result<OrderRequirements> requirementsFromJson(const nlohmann::json& j, const std::string& where);
Result<std::map<std::string, std::string>> attributesFromJson(const nlohmann::json& j,
                                                              const std::string& where);
Result<Order> orderFromJson(const nlohmann::json& j);
Result<Bid> bidFromJson(const nlohmann::json& j);
Result<Lease> leaseFromJson(const nlohmann::json& j);
Result<Attestation> attestationFromJson(const nlohmann::json& j);

}  // namespace mercato::ledger
