// Provider filtering and ranking for `mercato deploy` (publisher/selection.hpp).
#include "publisher/selection.hpp"

#include <gtest/gtest.h>

namespace mercato::publisher {
namespace {

ledger::ProviderRecord provider(std::string owner, Micros cpuPrice, Micros memPrice) {
  ledger::ProviderRecord p;
  p.owner = std::move(owner);
  p.nodeKey = std::string(64, 'a');
  p.gatewayUrl = "https://" + p.owner + ":8443";
  p.capacity = {4000, 8ll << 30, 0};
  p.prices = {cpuPrice, memPrice, 50'000, 1'000};
  p.attributes = {{"region", "eu"}};
  return p;
}

Requirements peak(int64_t cpu, int64_t mem) {
  Requirements r;
  r.cpuMillis = cpu;
  r.memoryBytes = mem;
  return r;
}

TEST(SelectionTest, HourlyCostAtPeak) {
  // 2 cores for an hour = 7200 CPU-s; 1 GiB for an hour = 3600 GiB-s.
  EXPECT_EQ(estimateHourlyCost({100, 10, 0, 0}, 2000, 1ll << 30, 0), 7200 * 100 + 3600 * 10);
  EXPECT_EQ(estimateHourlyCost({0, 0, 0, 0}, 2000, 1ll << 30, 5ll << 30), 0);
  // Disk is priced per GiB-hour: 5 GiB for an hour at 200 = 1000; 512 MiB = half a GiB-hour.
  EXPECT_EQ(estimateHourlyCost({0, 0, 0, 0, 200}, 2000, 1ll << 30, 5ll << 30), 1'000);
  EXPECT_EQ(estimateHourlyCost({0, 0, 0, 0, 200}, 0, 0, 512ll << 20), 100);
  EXPECT_EQ(estimateHourlyCost({100, 10, 0, 0, 200}, 2000, 1ll << 30, 5ll << 30),
            7200 * 100 + 3600 * 10 + 1'000);
}

TEST(SelectionTest, StorageCountsInCostCapacityAndCaps) {
  auto cheapDisk = provider("cheapdisk", 10, 1);
  cheapDisk.prices.storageGibHour = 100;
  auto dearDisk = provider("deardisk", 10, 1);
  dearDisk.prices.storageGibHour = 100'000;
  auto smallDisk = provider("smalldisk", 10, 1);
  smallDisk.capacity.storage = 1ll << 30;
  auto unknownDisk = provider("unknowndisk", 10, 1);  // capacity.storage 0: not checked
  Requirements r = peak(1000, 256ll << 20);
  r.storageBytes = 4ll << 30;
  auto s = filterProviders({dearDisk, smallDisk, cheapDisk, unknownDisk}, r);
  ASSERT_EQ(s.rejected.size(), 1u);
  EXPECT_EQ(s.rejected[0].owner, "smalldisk");
  EXPECT_NE(s.rejected[0].reason.find("storage 4Gi at peak, has 1Gi"), std::string::npos)
      << s.rejected[0].reason;
  rankCandidates(s.eligible, Strategy::kCheapest);
  ASSERT_EQ(s.eligible.size(), 3u);
  EXPECT_EQ(s.eligible[0].provider.owner, "unknowndisk");  // disk free
  EXPECT_EQ(s.eligible[1].provider.owner, "cheapdisk");
  EXPECT_EQ(s.eligible[2].provider.owner, "deardisk");
  EXPECT_EQ(s.eligible[2].hourlyCost - s.eligible[0].hourlyCost, 4 * 100'000);

  r.maxPrices.storageGibHour = 1'000;
  s = filterProviders({dearDisk, cheapDisk}, r);
  ASSERT_EQ(s.rejected.size(), 1u);
  EXPECT_EQ(s.rejected[0].owner, "deardisk");
  EXPECT_NE(s.rejected[0].reason.find("price storage 0.1 over --max-price 0.001"),
            std::string::npos)
      << s.rejected[0].reason;
}

TEST(SelectionTest, FiltersByCapacityAttributesAndPrice) {
  auto small = provider("small", 10, 1);
  small.capacity.cpu = 500;
  auto lowMem = provider("lowmem", 10, 1);
  lowMem.capacity.memory = 64ll << 20;
  auto us = provider("us", 10, 1);
  us.attributes["region"] = "us";
  auto pricey = provider("pricey", 1000, 1);
  auto gone = provider("gone", 10, 1);
  gone.active = false;
  auto ok = provider("ok", 10, 1);
  Requirements r = peak(1000, 256ll << 20);
  r.attributes = {{"region", "eu"}};
  r.maxPrices.cpuSecond = 100;
  auto s = filterProviders({small, lowMem, us, pricey, gone, ok}, r);
  ASSERT_EQ(s.eligible.size(), 1u);
  EXPECT_EQ(s.eligible[0].provider.owner, "ok");
  ASSERT_EQ(s.rejected.size(), 5u);
  auto reason = [&](const std::string& owner) {
    for (const auto& x : s.rejected)
      if (x.owner == owner) return x.reason;
    return std::string("?");
  };
  EXPECT_NE(reason("small").find("cpu 1 at peak, has 500m"), std::string::npos) << reason("small");
  EXPECT_NE(reason("lowmem").find("memory"), std::string::npos);
  EXPECT_NE(reason("us").find("region=us, wanted eu"), std::string::npos);
  EXPECT_NE(reason("pricey").find("over --max-price"), std::string::npos);
  EXPECT_EQ(reason("gone"), "deregistered");
}

TEST(SelectionTest, RankCheapestThenLatency) {
  auto s = filterProviders({provider("c", 30, 1), provider("a", 10, 1), provider("b", 10, 1)},
                           peak(1000, 128ll << 20));
  rankCandidates(s.eligible, Strategy::kCheapest);
  ASSERT_EQ(s.eligible.size(), 3u);
  EXPECT_EQ(s.eligible[0].provider.owner, "a");  // tie with b on cost: by owner
  EXPECT_EQ(s.eligible[1].provider.owner, "b");
  EXPECT_EQ(s.eligible[2].provider.owner, "c");

  s.eligible[0].rttMs = 40;  // a
  s.eligible[1].rttMs = 5;   // b
  // c unreachable: last
  rankCandidates(s.eligible, Strategy::kLatency);
  EXPECT_EQ(s.eligible[0].provider.owner, "b");
  EXPECT_EQ(s.eligible[1].provider.owner, "a");
  EXPECT_EQ(s.eligible[2].provider.owner, "c");
  // Equal RTT: the cheaper wins.
  s.eligible[0].rttMs = 7;
  s.eligible[1].rttMs = 7;
  s.eligible[2].rttMs = 7;
  rankCandidates(s.eligible, Strategy::kLatency);
  EXPECT_EQ(s.eligible[2].provider.owner, "c");
}

TEST(SelectionTest, ParsesFlags) {
  auto m = parseMaxPrices("cpu=0.0001, mem=0.00002,egress=0.05,req=1,storage=0.0002");
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  EXPECT_EQ(m->cpuSecond, 100);
  EXPECT_EQ(m->memGibSecond, 20);
  EXPECT_EQ(m->egressGib, 50'000);
  EXPECT_EQ(m->requests1k, 1'000'000);
  EXPECT_EQ(m->storageGibHour, 200);
  EXPECT_FALSE(parseMaxPrices("cpu=1")->storageGibHour.has_value());
  EXPECT_NE(parseMaxPrices("gpu=1").status().message().find("unknown price 'gpu'"),
            std::string::npos);
  EXPECT_NE(parseMaxPrices("gpu=1").status().message().find("req or storage"), std::string::npos);
  EXPECT_NE(parseMaxPrices("cpu").status().message().find("NAME=AMOUNT"), std::string::npos);
  EXPECT_FALSE(parseMaxPrices("cpu=-1").isOk());
  auto a = parseAttributes({"region=eu", "tier=gold=1"});
  ASSERT_TRUE(a.isOk());
  EXPECT_EQ((*a)["tier"], "gold=1");
  EXPECT_FALSE(parseAttributes({"=x"}).isOk());
  EXPECT_EQ(*parseStrategy("latency"), Strategy::kLatency);
  EXPECT_NE(parseStrategy("fastest").status().message().find("cheapest, latency or manual"),
            std::string::npos);
}

}  // namespace
}  // namespace mercato::publisher
