// The `bidding:` section, the pricing file, the live reload (a valid change applies, an invalid
// one keeps the previous strategy), and the capacity book.
#include "provider/bidengine/bidding_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/config.hpp"
#include "provider/bidengine/capacity_book.hpp"
#include "test_util.hpp"

namespace mercato::provider::bidengine {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

const ledger::Prices kRegistered{1'000, 500, 10'000, 10'000};

Result<BiddingConfig> parse(const std::string& yaml, const std::string& baseDir = "/etc/mercato") {
  auto root = parseYaml(yaml, "provider.yaml");
  if (!root.isOk()) return root.status();
  return parseBiddingConfig((*root)["bidding"], "provider.yaml", baseDir, kRegistered);
}

TEST(BiddingConfigTest, DefaultsToScaleAtTheRegisteredPrices) {
  auto c = parse("bidding: {}\n");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->pricing.strategy, "scale");
  EXPECT_EQ(c->pricing.rates, kRegistered);
  EXPECT_EQ(c->bidTtlMs, 300'000);
  EXPECT_TRUE(c->pricingFile.empty());
}

TEST(BiddingConfigTest, InlineScaleAndScript) {
  auto c = parse(R"(bidding:
  bidTtlSeconds: 60
  workers: 2
  strategy: script
  scale: {cpuSecond: 0.0002, memGibSecond: "0.0001"}
  script: {path: bin/price, args: [--fast], timeoutMs: 500, concurrency: 3}
)");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->bidTtlMs, 60'000);
  EXPECT_EQ(c->workers, 2);
  EXPECT_EQ(c->pricing.strategy, "script");
  EXPECT_EQ(c->pricing.rates, (ledger::Prices{200, 100, 10'000, 10'000}));  // rest: registered
  EXPECT_EQ(c->pricing.script.path, "/etc/mercato/bin/price");
  EXPECT_THAT(c->pricing.script.args, ::testing::ElementsAre("--fast"));
  EXPECT_EQ(c->pricing.script.timeoutMs, 500);
  EXPECT_EQ(c->pricing.script.concurrency, 3);
}

TEST(BiddingConfigTest, ScaleRatesIncludeStorage) {
  auto c = parse("bidding:\n  scale: {cpuSecond: 0.0002, storageGibHour: 0.0004}\n");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->pricing.rates, (ledger::Prices{200, 500, 10'000, 10'000, 400}));
  auto bad = parse("bidding:\n  scale:\n    storageGibHour: free\n");
  ASSERT_FALSE(bad.isOk());
  EXPECT_THAT(bad.status().message(), HasSubstr("provider.yaml:3"));
  EXPECT_THAT(bad.status().message(), HasSubstr("scale.storageGibHour"));
}

TEST(BiddingConfigTest, ErrorsNameFieldAndLine) {
  auto typo = parse("bidding:\n  strategy: scale\n  scael: {cpuSecond: 1}\n");
  ASSERT_FALSE(typo.isOk());
  EXPECT_THAT(typo.status().message(), HasSubstr("provider.yaml:3"));
  EXPECT_THAT(typo.status().message(), HasSubstr("scael"));
  auto amount = parse("bidding:\n  scale:\n    cpuSecond: cheap\n");
  ASSERT_FALSE(amount.isOk());
  EXPECT_THAT(amount.status().message(), HasSubstr("bidding.scale.cpuSecond"));
  EXPECT_THAT(parse("bidding: {strategy: script}\n").status().message(),
              HasSubstr("script.path: required"));
  EXPECT_THAT(parse("bidding: {bidTtlSeconds: 0}\n").status().message(),
              HasSubstr("bidTtlSeconds"));
  EXPECT_THAT(parse("bidding: {script: {path: /x, timeoutMs: 0}}\n").status().message(),
              HasSubstr("timeoutMs"));
  auto both = parse("bidding: {pricingFile: p.yaml, strategy: scale}\n");
  ASSERT_FALSE(both.isOk());
  EXPECT_THAT(both.status().message(), HasSubstr("not allowed with bidding.pricingFile"));
  auto file = parse("bidding: {pricingFile: pricing.yaml}\n");
  ASSERT_TRUE(file.isOk());
  EXPECT_EQ(file->pricingFile, "/etc/mercato/pricing.yaml");
}

TEST(LivePricingTest, AValidChangeAppliesAndAnInvalidOneKeepsThePrevious) {
  TempDir dir;
  BiddingConfig c;
  c.pricingFile = dir.write("pricing.yaml", "strategy: scale\nscale: {cpuSecond: 0.0001}\n");
  auto lp = LivePricing::create(c, kRegistered);
  ASSERT_TRUE(lp.isOk()) << lp.status().message();
  PricingInput in{"o", "p", {{"web", 1000, int64_t{1} << 30, 0, 1}}, {}};
  EXPECT_EQ((*lp)->current()->price(in)->cpuSecond, 100);
  EXPECT_TRUE((*lp)->poll().isOk());  // unchanged: nothing happens
  EXPECT_EQ((*lp)->generation(), 0u);

  dir.write("pricing.yaml", "strategy: scale\nscale: {cpuSecond: 0.0003}\n");
  EXPECT_TRUE((*lp)->poll().isOk());
  EXPECT_EQ((*lp)->generation(), 1u);
  EXPECT_EQ((*lp)->current()->price(in)->cpuSecond, 300);

  dir.write("pricing.yaml", "strategy: scale\nscale: {cpuSecond: lots}\n");
  auto bad = (*lp)->poll();
  EXPECT_FALSE(bad.isOk());
  EXPECT_THAT(bad.message(), HasSubstr("pricing.yaml:2"));
  EXPECT_EQ((*lp)->current()->price(in)->cpuSecond, 300);
  EXPECT_THAT((*lp)->lastError(), HasSubstr("cpuSecond"));

  dir.write("pricing.yaml", "strategy: script\nscript: {path: nothere.sh}\n");
  EXPECT_FALSE((*lp)->poll().isOk());  // parses, but the strategy can't be built
  EXPECT_EQ((*lp)->current()->name(), "scale");

  dir.script("price.sh",
             "echo '{\"cpuSecond\":9,\"memGibSecond\":9,\"egressGib\":9,"
             "\"requests1k\":9}'");
  dir.write("pricing.yaml", "strategy: script\nscript: {path: price.sh}\n");  // relative
  ASSERT_TRUE((*lp)->poll().isOk()) << (*lp)->lastError();
  EXPECT_EQ((*lp)->current()->name(), "script");
  EXPECT_EQ((*lp)->current()->price(in)->cpuSecond, 9);
  EXPECT_EQ((*lp)->lastError(), "");
  EXPECT_EQ((*lp)->generation(), 2u);
}

TEST(LivePricingTest, TheFileMustBeValidAtStartup) {
  TempDir dir;
  BiddingConfig c;
  c.pricingFile = dir.path("absent.yaml");
  EXPECT_FALSE(LivePricing::create(c, kRegistered).isOk());
  c.pricingFile = dir.write("bad.yaml", "strategy: auction\n");
  EXPECT_THAT(LivePricing::create(c, kRegistered).status().message(), HasSubstr("auction"));
}

TEST(CapacityBookTest, ReservesOnlyWhatFitsAndReleases) {
  CapacityBook book({4000, int64_t{4} << 30, 0});
  const ledger::Capacity one{1000, int64_t{1} << 30, 0};
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(book.reserve("o" + std::to_string(i), one));
  EXPECT_FALSE(book.reserve("o4", one));
  EXPECT_THAT(book.shortfall(one), HasSubstr("cpu: needs 1, 0 free of 4"));
  EXPECT_TRUE(book.reserve("o1", one));  // already held: no double count
  EXPECT_EQ(book.reserved().cpu, 4000);
  EXPECT_TRUE(book.release("o2"));
  EXPECT_FALSE(book.release("o2"));
  EXPECT_TRUE(book.reserve("o4", one));
  book.force("lease", one);  // the ledger says we hold it, even over capacity
  EXPECT_EQ(book.free().cpu, -1000);
  EXPECT_EQ(book.size(), 5u);
}

}  // namespace
}  // namespace mercato::provider::bidengine
