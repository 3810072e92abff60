#include "publisher/auction.hpp"

#include <algorithm>
#include <limits>

#include "publisher/selection.hpp"

namespace mercato::publisher {

ledger::OrderRequirements orderRequirementsFor(const manifest::Manifest& m,
                                               std::map<std::string, std::string> attributes) {
  ledger::OrderRequirements r;
  for (const auto& c : m.components)
    r.resources.push_back(
        {c.name, c.cpuMillis, c.memoryBytes, c.storageBytes, std::max(1, c.scaling.max)});
  r.attributes = std::move(attributes);
  return r;
}

Micros orderHourlyCost(const ledger::Prices& price, const ledger::OrderRequirements& req) {
  const ledger::Capacity total = req.total();
  return estimateHourlyCost(price, total.cpu, total.memory, total.storage);
}

Result<AuctionStrategy> parseAuctionStrategy(std::string_view name) {
  if (name == "cheapest") return AuctionStrategy::kCheapest;
  if (name == "score") return AuctionStrategy::kScore;
  if (name == "manual") return AuctionStrategy::kManual;
  return invalidArgument("--select '" + std::string(name) +
                         "': with --auction expected cheapest, score or manual");
}

void rankBids(std::vector<BidOption>& options, AuctionStrategy strategy) {
  if (options.empty()) return;
  if (strategy == AuctionStrategy::kScore) {
    Micros cheapest = std::numeric_limits<Micros>::max();
    int64_t fastest = std::numeric_limits<int64_t>::max();
    for (const auto& o : options) {
      cheapest = std::min(cheapest, o.hourlyCost);
      if (o.rttMs) fastest = std::min(fastest, *o.rttMs);
    }
    for (auto& o : options) {
      const double cost =
          cheapest > 0 ? static_cast<double>(o.hourlyCost) / cheapest : (o.hourlyCost > 0 ? 10 : 1);
      double rtt = 10;  // unmeasured or unreachable
      if (o.rttMs && fastest != std::numeric_limits<int64_t>::max())
        rtt = static_cast<double>(std::max<int64_t>(*o.rttMs, 1)) /
              static_cast<double>(std::max<int64_t>(fastest, 1));
      o.score = 0.7 * cost + 0.3 * rtt;
    }
    std::stable_sort(options.begin(), options.end(), [](const BidOption& a, const BidOption& b) {
      if (a.score != b.score) return a.score < b.score;
      return a.bid.id < b.bid.id;
    });
    return;
  }
  std::stable_sort(options.begin(), options.end(), [](const BidOption& a, const BidOption& b) {
    if (a.hourlyCost != b.hourlyCost) return a.hourlyCost < b.hourlyCost;
    return a.bid.id < b.bid.id;
  });
}

}  // namespace mercato::publisher
