// Auction side of `mercato deploy --auction`: turn a manifest into an order's requirements and
// rank the bids that providers placed on it.
//
// Strategies: cheapest (estimated cost of one hour of the whole order at peak under each bid's
// price, ties broken on bid id), score (0.7 × cost relative to the cheapest bid + 0.3 × gateway
// RTT relative to the fastest; a provider whose gateway did not answer counts as 10× the
// fastest), manual (the user picks from the ranked table; the CLI asks). The CLI measures RTT;
// these functions only order what they are given, so they are deterministic and unit-tested.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "ledger/market.hpp"
#include "manifest/manifest.hpp"

namespace mercato::publisher {

// One resource group per component: its per-instance resources and scaling.max instances.
ledger::OrderRequirements orderRequirementsFor(const manifest::Manifest& m,
                                               std::map<std::string, std::string> attributes);

// What the whole order costs for one hour at peak under `price` (rounded down per term).
Micros orderHourlyCost(const ledger::Prices& price, const ledger::OrderRequirements& req);

struct BidOption {
  ledger::Bid bid;
  ledger::ProviderRecord provider;
  Micros hourlyCost = 0;
  std::optional<int64_t> rttMs;  // unset = not measured or unreachable
  double score = 0;              // filled by rankBids for kScore (lower is better)
};

enum class AuctionStrategy { kCheapest, kScore, kManual };
// "cheapest" | "score" | "manual"; the error lists the choices.
Result<AuctionStrategy> parseAuctionStrategy(std::string_view name);

// Orders options best first (kManual ranks like kCheapest).
void rankBids(std::vector<BidOption>& options, AuctionStrategy strategy);

}  // namespace mercato::publisher
