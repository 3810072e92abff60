// Bid engines on a real embedded ledger in this process (FakeClock), with real pricing scripts:
// competition, live pricing changes, capacity under concurrent orders, broken scripts, restarts,
// attribute/auditor requirements and price caps.
#include "provider/bidengine/bid_engine.hpp"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "market_harness.hpp"
#include "provider/provider_config.hpp"
#include "provider/provider_store.hpp"
#include "test_util.hpp"

namespace mercato::provider::bidengine {
namespace {

using ::testing::HasSubstr;
using testing::kGi;
using testing::kTok;
using testing::MarketHarness;
using testing::scaleConfig;
using testing::TempDir;

const ledger::Capacity kBig{16'000, 32 * kGi, 0};

class BidEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<BidEngine> engine(uint8_t n, ledger::Capacity cap, BiddingConfig cfg,
                                    ProviderStore* store = nullptr,
                                    std::function<bool(const std::string&)> ended = {}) {
    auto o = m_.engineOptions(n, cap, std::move(cfg));
    o.leaseEndedLocally = std::move(ended);
    if (store) {
      o.loadCursor = [store] { return store->eventCursor("bidengine"); };
      o.saveCursor = [store](uint64_t seq) { return store->putEventCursor("bidengine", seq); };
    }
    auto e = BidEngine::create(std::move(o));
    EXPECT_TRUE(e.isOk()) << e.status().message();
    EXPECT_TRUE((*e)->start().isOk());
    return std::move(*e);
  }
  void accept(const std::string& bid) {
    MarketHarness::must(
        m_.run(*m_.publisher, ledger::TxKind::kLeaseCreate, ledger::LeaseCreateBody{bid}));
  }
  std::string addr(uint8_t n) { return m_.providers.at(n)->address(); }

  TempDir dir_;
  MarketHarness m_{dir_.path()};
};

TEST_F(BidEngineTest, ThreeProvidersCompeteAndTheCheapestWins) {
  for (uint8_t n : {1, 2, 3}) m_.addProvider(n, kBig);
  auto pricey = engine(1, kBig, scaleConfig({300, 150, 10'000, 1'000}));
  auto cheap = engine(2, kBig, scaleConfig({120, 60, 10'000, 1'000}));
  BiddingConfig sc = scaleConfig({100, 50, 10'000, 1'000});
  sc.pricing.strategy = "script";
  const std::string seen = dir_.path("stdin.json");
  // 2 x (1 CPU, 1Gi) for an hour at the reference rates is 1.08 MER; the script asks 1.62.
  sc.pricing.script.path = dir_.script("price.sh", "cat > " + seen + "\necho 1.62");
  auto scripted = engine(3, kBig, sc);

  const std::string order = m_.order(1000, kGi, 2, {500, 500, {}, {}});
  for (auto* e : {pricey.get(), cheap.get(), scripted.get()}) ASSERT_TRUE(m_.settle(*e));
  auto bids = m_.bids(order);
  ASSERT_EQ(bids.size(), 3u);
  std::map<std::string, ledger::Bid> by;
  for (const auto& b : bids) by[b.provider] = b;
  EXPECT_EQ(by.at(addr(1)).price, (ledger::Prices{300, 150, 10'000, 1'000}));
  EXPECT_EQ(by.at(addr(2)).price, (ledger::Prices{120, 60, 10'000, 1'000}));
  EXPECT_EQ(by.at(addr(3)).price, (ledger::Prices{150, 75, 15'000, 1'500}));  // 1.5 x the rates
  EXPECT_THAT(testing::readFile(seen), HasSubstr(m_.publisher->address()));

  // `cheapest`: the lowest estimated hourly cost for the order's resources.
  const std::vector<ledger::ResourceGroup> groups = {{"app", 1000, kGi, 0, 2}};
  const ledger::Bid* best = &bids[0];
  for (const auto& b : bids)
    if (hourlyEstimate(b.price, groups) < hourlyEstimate(best->price, groups)) best = &b;
  EXPECT_EQ(best->provider, addr(2));
  accept(best->id);
  for (auto* e : {pricey.get(), cheap.get(), scripted.get()}) ASSERT_TRUE(m_.settle(*e));

  auto won = cheap->status();
  EXPECT_EQ(won.bidsWon, 1u);
  EXPECT_EQ(won.leases, 1u);
  EXPECT_EQ(won.openBids, 0u);
  EXPECT_EQ(won.reserved.cpu, 2000);  // the lease holds the order's capacity
  for (auto* lost : {pricey.get(), scripted.get()}) {
    auto s = lost->status();
    EXPECT_EQ(s.bidsPlaced, 1u);
    EXPECT_EQ(s.bidsWon, 0u);
    EXPECT_EQ(s.openBids, 0u);
    EXPECT_EQ(s.reserved.cpu, 0) << "a lost bid must release its reservation";
  }
}

TEST_F(BidEngineTest, PricingFileChangeAppliesToTheNextOrderWithoutRestart) {
  m_.addProvider(1, kBig);
  BiddingConfig c;
  c.pricingFile = dir_.write("pricing.yaml", "strategy: scale\nscale: {cpuSecond: 0.0002}\n");
  c.configPollMs = 1000;
  auto e = engine(1, kBig, c);
  const std::string first = m_.order(1000, kGi);
  ASSERT_TRUE(m_.settle(*e));
  dir_.write("pricing.yaml", "strategy: scale\nscale: {cpuSecond: 0.0004}\n");
  m_.fake.advance(std::chrono::milliseconds(1000));  // the poll timer posts a reload
  for (int i = 0; i < 2000 && e->status().configGeneration == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(e->status().configGeneration, 1u);
  const std::string second = m_.order(1000, kGi);
  ASSERT_TRUE(m_.settle(*e));
  EXPECT_EQ(m_.bids(first).at(0).price.cpuSecond, 200);
  EXPECT_EQ(m_.bids(second).at(0).price.cpuSecond, 400);

  // A broken file is reported and the last good pricing stays.
  dir_.write("pricing.yaml", "strategy: scale\nscale: {cpuSecond: [oops]}\n");
  EXPECT_FALSE(e->reloadPricing().isOk());
  const std::string third = m_.order(1000, kGi);
  ASSERT_TRUE(m_.settle(*e));
  EXPECT_EQ(m_.bids(third).at(0).price.cpuSecond, 400);
  EXPECT_THAT(e->status().configError, HasSubstr("cpuSecond"));
}

TEST_F(BidEngineTest, TenConcurrentOrdersNeverOvercommitCapacityForFour) {
  const ledger::Capacity four{4000, 4 * kGi, 0};
  m_.addProvider(1, four);
  auto e = engine(1, four, scaleConfig({100, 50, 10'000, 1'000}));
  const std::string me = addr(1);
  // Open bids plus live leases, from one ledger state: the two reads are retried until no
  // event landed between them (a bid accepted in between would count as a bid and a lease).
  auto held = [&] {
    for (;;) {
      const uint64_t before = m_.headEvent();
      ledger::BidFilter f;
      f.provider = me;
      f.state = ledger::BidState::kOpen;
      size_t n = m_.ledger->bids(f)->size();
      ledger::EscrowFilter ef;
      ef.provider = me;
      // Keep the Result alive for the loop (ranging over *temporary() would dangle).
      auto escrows = m_.ledger->escrows(ef);
      EXPECT_TRUE(escrows.isOk());
      if (escrows.isOk())
        for (const auto& esc : *escrows) n += esc.state != ledger::EscrowState::kClosed;
      if (m_.headEvent() == before) return n;
    }
  };
  std::atomic<bool> done{false};
  std::atomic<size_t> peak{0};
  std::thread monitor([&] {
    while (!done) {
      peak = std::max(peak.load(), held());
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<std::string> orders;
  for (int i = 0; i < 10; ++i) orders.push_back(m_.order(1000, kGi));
  ASSERT_TRUE(m_.settle(*e));
  EXPECT_EQ(held(), 4u);
  auto s = e->status();
  EXPECT_EQ(s.openBids, 4u);
  EXPECT_EQ(s.waitingForCapacity, 6u);
  EXPECT_EQ(s.skipped["capacity"], 6u);
  EXPECT_EQ(s.available.cpu, 0);

  // Two bids win, two orders with our bids close: the two freed slots go to waiting orders.
  std::vector<ledger::Bid> ours = m_.bids("", me, ledger::BidState::kOpen);
  ASSERT_EQ(ours.size(), 4u);
  accept(ours[0].id);
  accept(ours[1].id);
  for (int i : {2, 3})
    MarketHarness::must(
        m_.run(*m_.publisher, ledger::TxKind::kOrderClose, ledger::OrderCloseBody{ours[i].order}));
  ASSERT_TRUE(m_.settle(*e));
  EXPECT_EQ(held(), 4u);
  s = e->status();
  EXPECT_EQ(s.leases, 2u);
  EXPECT_EQ(s.openBids, 2u);
  EXPECT_EQ(s.waitingForCapacity, 4u);
  EXPECT_EQ(s.bidsPlaced, 6u);
  done = true;
  monitor.join();
  EXPECT_LE(peak.load(), 4u);
}

TEST_F(BidEngineTest, AnExpiredBidReleasesItsCapacityToAWaitingOrder) {
  const ledger::Capacity one{1000, kGi, 0};
  m_.addProvider(1, one);
  auto e = engine(1, one, scaleConfig({100, 50, 10'000, 1'000}, /*ttlMs=*/5'000));
  // One at a time: two orders evaluated together race for the one CPU.
  const std::string first = m_.order(1000, kGi);
  ASSERT_TRUE(m_.settle(*e));
  const std::string second = m_.order(1000, kGi);
  ASSERT_TRUE(m_.settle(*e));
  ASSERT_EQ(m_.bids(first).size(), 1u);
  EXPECT_TRUE(m_.bids(second).empty());
  EXPECT_EQ(e->status().waitingForCapacity, 1u);
  m_.fake.advance(std::chrono::milliseconds(6'000));  // the ledger's tick expires the bid
  for (int i = 0; i < 2000 && m_.bids(second).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(m_.settle(*e));
  ASSERT_EQ(m_.bids(first).size(), 1u);
  EXPECT_EQ(m_.bids(first).at(0).state, ledger::BidState::kExpired);
  ASSERT_EQ(m_.bids(second).size(), 1u);
  EXPECT_EQ(m_.bids(second).at(0).state, ledger::BidState::kOpen);
  auto s = e->status();
  EXPECT_EQ(s.openBids, 1u);
  // The first order is still open, so its bid is renewed; the waiting order went first and
  // holds the one CPU, so the renewal waits in its turn.
  EXPECT_EQ(s.bidsRenewed, 1u);
  EXPECT_EQ(s.waitingForCapacity, 1u);
  EXPECT_EQ(s.skipped["capacity"], 2u);  // second once (not again on its retry), first's renewal
}

TEST_F(BidEngineTest, AnExpiredBidOnAnOpenOrderIsRenewedAtTodaysPrice) {
  m_.addProvider(1, kBig);
  auto e = engine(1, kBig, scaleConfig({100, 50, 10'000, 1'000}, /*ttlMs=*/5'000));
  const std::string order = m_.order(1000, kGi);
  ASSERT_TRUE(m_.settle(*e));
  ASSERT_EQ(m_.bids(order).size(), 1u);
  m_.fake.advance(std::chrono::milliseconds(6'000));  // the ledger's tick expires the bid
  for (int i = 0; i < 2000 && m_.bids(order, addr(1), ledger::BidState::kOpen).size() +
                                      m_.bids(order, addr(1), ledger::BidState::kExpired).size() <
                                  2;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(m_.settle(*e));
  auto all = m_.bids(order, addr(1));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(m_.bids(order, addr(1), ledger::BidState::kExpired).size(), 1u);
  EXPECT_EQ(m_.bids(order, addr(1), ledger::BidState::kOpen).size(), 1u);
  auto s = e->status();
  EXPECT_EQ(s.bidsRenewed, 1u);
  EXPECT_EQ(s.bidsPlaced, 2u);
  EXPECT_EQ(s.openBids, 1u);
  EXPECT_EQ(s.reserved.cpu, 1000) << "the renewal holds the order's capacity once";
}

TEST_F(BidEngineTest, ALeaseTheProviderEndedFreesItsCapacityAlsoAfterARestart) {
  const ledger::Capacity one{1000, kGi, 0};
  m_.addProvider(1, one);
  auto store = ProviderStore::open(dir_.path("provider.db")).value();
  std::set<std::string> ended;
  std::mutex mu;
  auto endedFn = [&](const std::string& lease) {
    std::lock_guard lk(mu);
    return ended.count(lease) > 0;
  };
  std::string first, second, lease;
  {
    auto e = engine(1, one, scaleConfig({100, 50, 10'000, 1'000}), store.get(), endedFn);
    first = m_.order(1000, kGi);  // one at a time: together they race for the one CPU
    ASSERT_TRUE(m_.settle(*e));
    second = m_.order(1000, kGi);
    ASSERT_TRUE(m_.settle(*e));
    accept(m_.bids(first).at(0).id);
    ASSERT_TRUE(m_.settle(*e));
    lease = m_.ledger->leases({}).value().at(0).id;
    EXPECT_EQ(e->status().leases, 1u);
    EXPECT_TRUE(m_.bids(second).empty()) << "the lease holds the only CPU";
    // The provider removed the lease's deployment (say its escrow ran dry and the publisher
    // never closed it): the escrow stays open, the capacity comes back.
    {
      std::lock_guard lk(mu);
      ended.insert(lease);
    }
    e->leaseEnded(lease);
    e->leaseEnded("no-such-lease");  // ignored
    for (int i = 0; i < 2000 && m_.bids(second).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(m_.settle(*e));
    EXPECT_NE(m_.ledger->escrow(lease)->state, ledger::EscrowState::kClosed);
    ASSERT_EQ(m_.bids(second, addr(1)).size(), 1u);
    auto s = e->status();
    EXPECT_EQ(s.leases, 0u);
    EXPECT_EQ(s.openBids, 1u);
  }
  // After a restart the rebuild skips the ended lease: only the open bid holds capacity.
  auto e = engine(1, one, scaleConfig({100, 50, 10'000, 1'000}), store.get(), endedFn);
  ASSERT_TRUE(m_.settle(*e));
  auto s = e->status();
  EXPECT_EQ(s.leases, 0u);
  EXPECT_EQ(s.openBids, 1u);
  EXPECT_EQ(s.reserved.cpu, 1000);
}

TEST_F(BidEngineTest, BrokenScriptsProduceNoBidAndTheReasonIsCounted) {
  struct Case {
    uint8_t n;
    std::string body, reason;
  };
  const std::vector<Case> cases = {
      {1, "sleep 20", "pricing_timeout"},
      {2, "cat >/dev/null; echo 'about tree fiddy'", "pricing_bad_output"},
      {3, "kill -SEGV $$", "pricing_crashed"}};
  std::vector<std::unique_ptr<BidEngine>> engines;
  MetricsRegistry metrics;
  for (const auto& c : cases) {
    m_.addProvider(c.n, kBig);
    BiddingConfig cfg = scaleConfig({100, 50, 10'000, 1'000});
    cfg.pricing.strategy = "script";
    cfg.pricing.script.path = dir_.script("p" + std::to_string(c.n) + ".sh", c.body);
    cfg.pricing.script.timeoutMs = 300;
    auto o = m_.engineOptions(c.n, kBig, cfg);
    if (c.n == 1) o.metrics = &metrics;
    engines.push_back(BidEngine::create(std::move(o)).value());
    ASSERT_TRUE(engines.back()->start().isOk());
  }
  const std::string order = m_.order(1000, kGi);
  for (auto& e : engines) ASSERT_TRUE(m_.settle(*e));
  EXPECT_TRUE(m_.bids(order).empty());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto s = engines[i]->status();
    EXPECT_EQ(s.skipped[cases[i].reason], 1u) << cases[i].reason;
    EXPECT_EQ(s.bidsPlaced, 0u);
    EXPECT_EQ(s.reserved.cpu, 0) << "a failed pricing must release the reservation";
  }
  EXPECT_THAT(metrics.render(),
              HasSubstr("mercato_bidengine_bids_skipped_total{reason=\"pricing_timeout\"} 1"));
  EXPECT_THAT(metrics.render(), HasSubstr("mercato_bidengine_pricing_seconds_count 1"));
}

TEST_F(BidEngineTest, RestartDoesNotDoubleBidAndKeepsItsLease) {
  const ledger::Capacity three{3000, 3 * kGi, 0};
  m_.addProvider(1, three);
  auto store = ProviderStore::open(dir_.path("provider.db")).value();
  const uint64_t before = m_.headEvent();
  std::string o1, o2, o3, o4;
  {
    auto e = engine(1, three, scaleConfig({100, 50, 10'000, 1'000}), store.get());
    o1 = m_.order(1000, kGi);
    o2 = m_.order(1000, kGi);
    ASSERT_TRUE(m_.settle(*e));
    accept(m_.bids(o1).at(0).id);
    ASSERT_TRUE(m_.settle(*e));
    EXPECT_EQ(e->status().leases, 1u);
  }  // stopped (as a crash would: nothing below depends on a clean shutdown)
  // As if it died before saving its cursor: it replays o1 and o2's creation.
  ASSERT_TRUE(store->putEventCursor("bidengine", before).isOk());
  o3 = m_.order(1000, kGi);  // created while it was down
  o4 = m_.order(1000, kGi);  // with o3, would overcommit: the lease and o2's bid hold 2 of 3 CPUs
  auto e = engine(1, three, scaleConfig({100, 50, 10'000, 1'000}), store.get());
  ASSERT_TRUE(m_.settle(*e));
  for (const auto& o : {o1, o2}) EXPECT_EQ(m_.bids(o, addr(1)).size(), 1u) << o;
  // o3 and o4 are evaluated concurrently after the restart and one CPU is left: whichever
  // evaluation reserves first bids, the other waits. Never both, never twice.
  const size_t b3 = m_.bids(o3, addr(1)).size(), b4 = m_.bids(o4, addr(1)).size();
  EXPECT_EQ(b3 + b4, 1u) << "o3 has " << b3 << " bids, o4 has " << b4;
  auto s = e->status();
  EXPECT_EQ(s.leases, 1u);
  EXPECT_EQ(s.openBids, 2u);
  EXPECT_EQ(s.reserved.cpu, 3000);
  EXPECT_EQ(s.waitingForCapacity, 1u);
  EXPECT_GT(store->eventCursor("bidengine").value(), before);
}

TEST_F(BidEngineTest, RequirementsAndCapsDecideWhetherToBid) {
  m_.addProvider(1, kBig, {{"tier", "gold"}});
  m_.addProvider(2, kBig, {{"tier", "bronze"}});
  auto gold = engine(1, kBig, scaleConfig({100, 50, 10'000, 1'000}));
  auto bronze = engine(2, kBig, scaleConfig({100, 50, 10'000, 1'000}));
  const std::string wantsGold = m_.order(1000, kGi, 1, {}, {{"tier", "gold"}});
  ledger::AuditorRequirement audited{m_.auditor->address(), {{"soc2", "yes"}}};
  const std::string wantsAudit = m_.order(1000, kGi, 1, {}, {}, {audited});
  const std::string cheapCaps = m_.order(1000, kGi, 1, {99, {}, {}, {}});
  for (auto* e : {gold.get(), bronze.get()}) ASSERT_TRUE(m_.settle(*e));
  EXPECT_EQ(m_.bids(wantsGold, addr(1)).size(), 1u);
  EXPECT_TRUE(m_.bids(wantsGold, addr(2)).empty());
  EXPECT_TRUE(m_.bids(wantsAudit).empty());
  EXPECT_TRUE(m_.bids(cheapCaps).empty()) << "never bids above a cap, never clamps";
  EXPECT_EQ(bronze->status().skipped["attributes"], 1u);
  EXPECT_EQ(gold->status().skipped["auditor"], 1u);
  EXPECT_EQ(gold->status().skipped["over_max_price"], 1u);

  // Once the auditor attests, the next such order gets our bid.
  MarketHarness::must(m_.run(*m_.auditor, ledger::TxKind::kAuditorAttest,
                             ledger::AuditorAttestBody{addr(1), {{"soc2", "yes"}}}));
  const std::string later = m_.order(1000, kGi, 1, {}, {}, {audited});
  ASSERT_TRUE(m_.settle(*gold));
  EXPECT_EQ(m_.bids(later, addr(1)).size(), 1u);
}

}  // namespace
}  // namespace mercato::provider::bidengine

namespace mercato::provider {
namespace {

TEST(ProviderYamlBiddingTest, TheSectionEnablesTheEngineAndDevEnablesIt) {
  auto none = parseProviderConfig("prices: {cpuSecond: 0.0002}\n", "/etc/m/provider.yaml");
  ASSERT_TRUE(none.isOk()) << none.status().message();
  EXPECT_FALSE(none->bidding.has_value());
  auto bare =
      parseProviderConfig("prices: {cpuSecond: 0.0002}\nbidding:\n", "/etc/m/provider.yaml");
  ASSERT_TRUE(bare.isOk()) << bare.status().message();
  ASSERT_TRUE(bare->bidding.has_value());
  EXPECT_EQ(bare->bidding->pricing.strategy, "scale");
  EXPECT_EQ(bare->bidding->pricing.rates.cpuSecond, 200);  // the provider's prices
  auto file = parseProviderConfig("bidding: {pricingFile: pricing.yaml, bidTtlSeconds: 30}\n",
                                  "/etc/m/provider.yaml");
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ(file->bidding->pricingFile, "/etc/m/pricing.yaml");
  EXPECT_EQ(file->bidding->bidTtlMs, 30'000);
  auto typo =
      parseProviderConfig("bidding:\n  strategy: scale\n  ttl: 3\n", "/etc/m/provider.yaml");
  ASSERT_FALSE(typo.isOk());
  EXPECT_THAT(typo.status().message(), ::testing::HasSubstr("provider.yaml:3"));
  auto dev = devProviderConfig();
  ASSERT_TRUE(dev.bidding.has_value());
  EXPECT_EQ(dev.bidding->pricing.rates, dev.prices);
}

}  // namespace
}  // namespace mercato::provider
