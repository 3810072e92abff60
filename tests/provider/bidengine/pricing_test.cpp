// Pricing strategies: the scale strategy, how counts enter the hourly estimate, the conversion
// of an hourly total into a Prices table, script output parsing and the create() table.
#include "provider/bidengine/pricing.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mercato::provider::bidengine {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kGi = int64_t{1} << 30;
const ledger::Prices kRates{100, 50, 10'000, 1'000};

PricingInput input(std::vector<ledger::ResourceGroup> groups) {
  PricingInput in;
  in.order = "o1";
  in.owner = "mer1owner";
  in.resources = std::move(groups);
  return in;
}

TEST(PricingTest, TableListsBothStrategiesAndRejectsUnknownNames) {
  EXPECT_THAT(pricingStrategyNames(), ::testing::ElementsAre("scale", "script"));
  PricingConfig c;
  c.strategy = "auction";
  auto bad = createPricing(c);
  ASSERT_FALSE(bad.isOk());
  EXPECT_THAT(bad.status().message(), HasSubstr("known: scale, script"));
}

TEST(PricingTest, ScaleBidsItsRatesAndRefusesAllZero) {
  PricingConfig c;
  c.rates = kRates;
  auto s = createPricing(c);
  ASSERT_TRUE(s.isOk()) << s.status().message();
  EXPECT_EQ((*s)->name(), "scale");
  auto small = (*s)->price(input({{"web", 250, kGi / 4, 0, 1}}));
  auto big = (*s)->price(input({{"web", 4000, 8 * kGi, 0, 10}}));
  ASSERT_TRUE(small.isOk() && big.isOk());
  EXPECT_EQ(*small, kRates);  // unit prices do not depend on the order's size...
  EXPECT_EQ(*big, kRates);
  c.rates = {};
  EXPECT_THAT(createPricing(c).status().message(), HasSubstr("every rate is zero"));
}

TEST(PricingTest, CountsMultiplyEachGroupInTheHourlyEstimate) {
  // ...what a lease costs does: 3 x (500m, 1Gi) + 1 x (1 CPU, 512Mi) = 2.5 CPU, 3.5Gi.
  std::vector<ledger::ResourceGroup> g = {{"api", 500, kGi, 0, 3}, {"db", 1000, kGi / 2, 0, 1}};
  auto total = totalResources(g);
  EXPECT_EQ(total.cpu, 2500);
  EXPECT_EQ(total.memory, 7 * kGi / 2);
  // cpu: 2.5 CPU x 3600 s x 100 = 900,000; memory: 3.5 GiB x 3600 s x 50 = 630,000.
  EXPECT_EQ(hourlyEstimate(kRates, g), 1'530'000);
  g[0].count = 6;
  EXPECT_EQ(hourlyEstimate(kRates, g), 1'440'000 + 1'170'000);  // 4 CPU, 6.5Gi
}

TEST(PricingTest, ScaleBidsItsStorageRateAndTheEstimateCountsEachGroupsDisk) {
  PricingConfig c;
  c.rates = {0, 0, 0, 0, 2'000};  // storage alone is a valid rate table
  auto s = createPricing(c);
  ASSERT_TRUE(s.isOk()) << s.status().message();
  auto p = (*s)->price(input({{"web", 250, kGi / 4, 10 * kGi, 3}}));
  ASSERT_TRUE(p.isOk());
  EXPECT_EQ(p->storageGibHour, 2'000);
  // 3 x 10Gi + 1 x 2Gi = 32 GiB of disk for an hour at 2000 per GiB-hour = 64,000.
  std::vector<ledger::ResourceGroup> g = {{"web", 250, kGi / 4, 10 * kGi, 3},
                                          {"db", 1000, kGi, 2 * kGi, 1}};
  EXPECT_EQ(totalResources(g).storage, 32 * kGi);
  EXPECT_EQ(hourlyEstimate(c.rates, g), 64'000);
  ledger::Prices withDisk = kRates;
  withDisk.storageGibHour = 2'000;
  EXPECT_EQ(hourlyEstimate(withDisk, g), hourlyEstimate(kRates, g) + 64'000);
  EXPECT_THAT(createPricing(PricingConfig{}).status().message(), HasSubstr("storageGibHour"));
}

TEST(PricingTest, HourlyTotalScalesTheStorageRateToo) {
  // 1 CPU + 1Gi = 540,000 per hour at kRates; 10 GiB of disk at 1,000 per GiB-hour = 10,000.
  ledger::Prices rates = kRates;
  rates.storageGibHour = 1'000;
  const ledger::Capacity total{1000, kGi, 10 * kGi};
  auto p = scaleToHourly(rates, total, 2 * 550'000);
  ASSERT_TRUE(p.isOk()) << p.status().message();
  EXPECT_EQ(*p, (ledger::Prices{200, 100, 20'000, 2'000, 2'000}));
  // Disk alone can carry an hourly price.
  auto disk = scaleToHourly({0, 0, 0, 0, 1'000}, {0, 0, 10 * kGi}, 30'000);
  ASSERT_TRUE(disk.isOk()) << disk.status().message();
  EXPECT_EQ(disk->storageGibHour, 3'000);
  // A script may answer with a storage price, or leave it out (0).
  auto j = parseScriptOutput(
      R"({"cpuSecond": 1, "memGibSecond": 2, "egressGib": 3, "requests1k": 4, "storageGibHour": 5})",
      kRates, total);
  ASSERT_TRUE(j.isOk()) << j.status().message();
  EXPECT_EQ(*j, (ledger::Prices{1, 2, 3, 4, 5}));
  EXPECT_EQ(scriptInput(input({{"web", 500, kGi, 3 * kGi, 2}}), rates)["total"]["storage"],
            6 * kGi);
  EXPECT_EQ(scriptInput(input({{"web", 500, kGi, 3 * kGi, 2}}), rates)["rates"]["storageGibHour"],
            1'000);
}

TEST(PricingTest, HourlyTotalScalesEveryRateInProportion) {
  const ledger::Capacity total{1000, kGi, 0};  // 360,000 + 180,000 = 540,000 per hour at kRates
  auto p = scaleToHourly(kRates, total, 1'080'000);
  ASSERT_TRUE(p.isOk()) << p.status().message();
  EXPECT_EQ(*p, (ledger::Prices{200, 100, 20'000, 2'000}));
  // Rounded down per term: the estimate never exceeds what the script asked for.
  auto odd = scaleToHourly(kRates, total, 777'777);
  ASSERT_TRUE(odd.isOk());
  EXPECT_LE(hourlyEstimate(*odd, {{"x", 1000, kGi, 0, 1}}), 777'777);
  EXPECT_GT(hourlyEstimate(*odd, {{"x", 1000, kGi, 0, 1}}), 777'777 - 2'000);
  EXPECT_THAT(scaleToHourly({0, 0, 5, 5}, total, 100).status().message(),
              HasSubstr("non-zero cpuSecond/memGibSecond/storageGibHour"));
}

TEST(PricingTest, ScriptOutputIsPricesJsonOrOneHourlyNumber) {
  const ledger::Capacity total{1000, kGi, 0};
  auto j = parseScriptOutput(
      "  {\"cpuSecond\": 1, \"memGibSecond\": 2, \"egressGib\": 3, \"requests1k\": 4}\n", kRates,
      total);
  ASSERT_TRUE(j.isOk()) << j.status().message();
  EXPECT_EQ(*j, (ledger::Prices{1, 2, 3, 4}));
  auto n = parseScriptOutput("1.08\n", kRates, total);  // MER per hour
  ASSERT_TRUE(n.isOk()) << n.status().message();
  EXPECT_EQ(*n, (ledger::Prices{200, 100, 20'000, 2'000}));
  for (const char* bad :
       {"", "abc", "1e3", "-1", "1 2", "0.0000001", "{\"cpuSecond\": 1}", "{not json",
        "{\"cpuSecond\":1.5,\"memGibSecond\":2,\"egressGib\":3,"
        "\"requests1k\":4}"}) {
    auto r = parseScriptOutput(bad, kRates, total);
    EXPECT_FALSE(r.isOk()) << "accepted '" << bad << "'";
    if (!r.isOk()) EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(PricingTest, ScriptInputCarriesTheOrder) {
  PricingInput in = input({{"web", 500, kGi, 0, 2}});
  in.maxPrice.cpuSecond = 300;
  auto j = scriptInput(in, kRates);
  EXPECT_EQ(j["order"], "o1");
  EXPECT_EQ(j["owner"], "mer1owner");
  EXPECT_EQ(j["resources"][0]["count"], 2);
  EXPECT_EQ(j["total"]["cpu"], 1000);
  EXPECT_EQ(j["maxPrice"]["cpuSecond"], 300);
  EXPECT_FALSE(j["maxPrice"].contains("memGibSecond"));  // no cap
  EXPECT_EQ(j["rates"]["cpuSecond"], 100);
  EXPECT_EQ(j["hourlyAtRates"], 720'000);  // 1 CPU + 2Gi for an hour
}

TEST(PricingTest, FailureReasonsFollowTheStatusCode) {
  EXPECT_EQ(pricingFailureReason(deadlineExceeded("")), "pricing_timeout");
  EXPECT_EQ(pricingFailureReason(invalidArgument("")), "pricing_bad_output");
  EXPECT_EQ(pricingFailureReason(internalError("")), "pricing_crashed");
  EXPECT_EQ(pricingFailureReason(failedPrecondition("")), "pricing_exit_status");
  EXPECT_EQ(pricingFailureReason(resourceExhausted("")), "pricing_busy");
  EXPECT_EQ(pricingFailureReason(notFound("")), "pricing_not_found");
  EXPECT_EQ(pricingFailureReason(unavailable("")), "pricing_error");
}

}  // namespace
}  // namespace mercato::provider::bidengine
