// Auction helpers of `mercato deploy --auction`: manifest -> order requirements, bid ranking.
#include <gtest/gtest.h>

#include "publisher/auction.hpp"

namespace mercato::publisher {
namespace {

manifest::Manifest twoTier() {
  manifest::Manifest m;
  m.name = "shop";
  manifest::Component web;
  web.name = "web";
  web.image = "registry.example/web:1";
  web.cpuMillis = 500;
  web.memoryBytes = 256ll << 20;
  web.scaling.max = 3;
  manifest::Component db = web;
  db.name = "db";
  db.cpuMillis = 1000;
  db.memoryBytes = 1ll << 30;
  db.scaling.max = 1;
  m.components = {web, db};
  return m;
}

BidOption option(const std::string& id, Micros cpuSecond, std::optional<int64_t> rtt) {
  BidOption o;
  o.bid.id = id;
  o.bid.price = {cpuSecond, 0, 0, 0};
  o.hourlyCost = cpuSecond * 36;  // any monotonic function of price will do here
  o.rttMs = rtt;
  return o;
}

TEST(Auction, RequirementsCarryPerInstanceResourcesTimesScalingMax) {
  auto req = orderRequirementsFor(twoTier(), {{"region", "eu"}});
  ASSERT_EQ(req.resources.size(), 2u);
  EXPECT_EQ(req.resources[0].name, "web");
  EXPECT_EQ(req.resources[0].count, 3);
  EXPECT_EQ(req.resources[0].cpu, 500);
  EXPECT_EQ(req.total().cpu, 2500);
  EXPECT_EQ(req.total().memory, (768ll << 20) + (1ll << 30));
  EXPECT_EQ(req.attributes.at("region"), "eu");
  // The same peak the direct flow filters on.
  EXPECT_EQ(req.total().cpu, twoTier().peakCpuMillis());
  EXPECT_EQ(req.total().memory, twoTier().peakMemoryBytes());
}

TEST(Auction, HourlyCostIsTheWholeOrderAtPeak) {
  auto req = orderRequirementsFor(twoTier(), {});
  // 2.5 cores for an hour at 100 micro/cpu-s = 900,000; 1.75 GiB for an hour at 1000/GiB-s.
  EXPECT_EQ(orderHourlyCost({100, 1000, 0, 0}, req), 900'000 + 6'300'000);
}

TEST(Auction, CheapestRanksOnCostThenBidId) {
  std::vector<BidOption> v = {option("bid_c", 300, 1), option("bid_b", 100, 50),
                              option("bid_a", 100, 90)};
  rankBids(v, AuctionStrategy::kCheapest);
  EXPECT_EQ(v[0].bid.id, "bid_a");
  EXPECT_EQ(v[1].bid.id, "bid_b");
  EXPECT_EQ(v[2].bid.id, "bid_c");
}

TEST(Auction, ScoreTradesPriceAgainstLatency) {
  // bid_far is 10% cheaper but 4x slower: 0.7*90/80 + 0.3*4 = 1.99 against bid_near's
  // 0.7*100/80 + 0.3*1 = 1.18; bid_dead is cheapest but unreachable (10x): 0.7 + 3 = 3.7.
  std::vector<BidOption> v = {option("bid_far", 90, 20), option("bid_near", 100, 5),
                              option("bid_dead", 80, std::nullopt)};
  rankBids(v, AuctionStrategy::kScore);
  EXPECT_EQ(v[0].bid.id, "bid_near");
  EXPECT_NEAR(v[0].score, 1.175, 1e-9);
  EXPECT_EQ(v[1].bid.id, "bid_far");
  EXPECT_EQ(v[2].bid.id, "bid_dead");
  EXPECT_FALSE(parseAuctionStrategy("latency").isOk());
  EXPECT_EQ(*parseAuctionStrategy("manual"), AuctionStrategy::kManual);
}

}  // namespace
}  // namespace mercato::publisher
