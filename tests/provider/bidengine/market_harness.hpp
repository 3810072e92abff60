// MarketHarness: a real embedded ledger in this process (on a FakeClock by default) with a
// funded publisher, registered providers and bid engines on top. Shared by the bid engine tests
// and bench/bidengine_bench.cpp.
//
// Thread-safety: call from one thread (the test's); engines run their own threads.
#pragma once

#include <unistd.h>

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.hpp"
#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"
#include "provider/bidengine/bid_engine.hpp"

namespace mercato::provider::bidengine::testing {

inline constexpr int64_t kGi = int64_t{1} << 30;
inline constexpr Micros kTok = kMicrosPerToken;

inline crypto::Identity keyFor(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed.fill(n);
  return crypto::Identity::fromSeed(seed).value();
}

struct MarketHarness {
  // `dir` holds the ledger database; `clock` null = an internal FakeClock.
  explicit MarketHarness(const std::string& dir, Clock* clock = nullptr, bool syncFull = false)
      : dataDir(dir), clock_(clock ? clock : &fake) {
    ledger::LedgerConfig c;
    c.dataDir = dir + "/ledger";
    c.chainId = chain;
    c.devMode = true;
    c.syncFull = syncFull;
    c.clock = clock_;
    ledger = ledger::createLedger(c).value();
    publisher = std::make_unique<crypto::Identity>(keyFor(200));
    auditor = std::make_unique<crypto::Identity>(keyFor(201));
    must(run(*publisher, ledger::TxKind::kMint,
             ledger::MintBody{publisher->address(), 1'000'000 * kTok}));
    must(run(*auditor, ledger::TxKind::kMint, ledger::MintBody{auditor->address(), kTok}));
  }

  Result<ledger::TxReceipt> run(const crypto::Identity& id, ledger::TxKind kind,
                                ledger::TxBody body) {
    std::lock_guard lock(mu);
    auto nonce = ledger->nextNonce(id.address());
    if (!nonce.isOk()) return nonce.status();
    return ledger->submitAndWait(
        ledger::signTx(ledger::Tx{chain, kind, id.address(), *nonce, std::move(body)}, id));
  }
  static ledger::TxReceipt must(Result<ledger::TxReceipt> r) {
    if (!r.isOk()) throw std::runtime_error(r.status().toString());
    return *r;
  }

  // Registers provider `n` (identity keyFor(n)) with funds for bid deposits.
  const crypto::Identity& addProvider(uint8_t n, ledger::Capacity cap,
                                      std::map<std::string, std::string> attrs = {}) {
    auto& id = providers[n];
    id = std::make_unique<crypto::Identity>(keyFor(n));
    must(run(*id, ledger::TxKind::kMint, ledger::MintBody{id->address(), 10'000 * kTok}));
    ledger::ProviderBody b;
    b.nodeKey = id->publicKey().hex();
    b.gatewayUrl = "https://127.0.0.1:" + std::to_string(7000 + n);
    b.attributes = std::move(attrs);
    b.capacity = cap;
    b.prices = {100, 50, 10'000, 1'000};
    must(run(*id, ledger::TxKind::kProviderRegister, b));
    return *id;
  }

  // Creates an order of `count` instances of (cpu, memory); returns its id.
  std::string order(int64_t cpu, int64_t memory, int64_t count = 1, ledger::PriceCaps caps = {},
                    std::map<std::string, std::string> attrs = {},
                    std::vector<ledger::AuditorRequirement> signedBy = {},
                    int64_t ttlMs = 600'000) {
    ledger::OrderCreateBody b;
    b.requirements.resources = {{"app", cpu, memory, 0, count}};
    b.requirements.attributes = std::move(attrs);
    b.requirements.signedBy = std::move(signedBy);
    b.maxPrice = caps;
    b.deposit = 10 * kTok;
    b.ttlMs = ttlMs;
    return must(run(*publisher, ledger::TxKind::kOrderCreate, b))
        .result["order"]
        .get<std::string>();
  }

  BidEngineOptions engineOptions(uint8_t n, ledger::Capacity cap, BiddingConfig cfg) {
    BidEngineOptions o;
    o.ledger = ledger.get();
    o.clock = clock_;
    o.identity = providers.at(n).get();
    o.chainId = chain;
    o.capacity = cap;
    o.defaultRates = {100, 50, 10'000, 1'000};
    o.config = std::move(cfg);
    return o;
  }

  uint64_t headEvent() { return ledger->info().value().eventSeq; }
  // Waits until `engine` has applied every event so far and evaluated every order it started.
  bool settle(BidEngine& engine) { return engine.waitIdle(headEvent(), std::chrono::seconds(20)); }

  std::vector<ledger::Bid> bids(const std::string& order, const std::string& provider = "",
                                std::optional<ledger::BidState> state = std::nullopt) {
    ledger::BidFilter f;
    f.order = order;
    f.provider = provider;
    f.state = state;
    f.limit = 100'000;
    return ledger->bids(f).value();
  }

  std::string dataDir;
  std::string chain = "test-chain";
  FakeClock fake;
  Clock* clock_;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<crypto::Identity> publisher, auditor;
  std::map<uint8_t, std::unique_ptr<crypto::Identity>> providers;
  std::mutex mu;
};

inline BiddingConfig scaleConfig(ledger::Prices rates, int64_t ttlMs = 300'000) {
  BiddingConfig c;
  c.pricing.strategy = "scale";
  c.pricing.rates = rates;
  c.bidTtlMs = ttlMs;
  return c;
}

}  // namespace mercato::provider::bidengine::testing
