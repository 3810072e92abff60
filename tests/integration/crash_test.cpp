// Crash test: load a real `mercatod --dev` through the HTTP API from several threads and
// SIGKILL it at random points, several times over. After each restart every acknowledged
// transaction is in the log, the hash chain and state root verify, and no transaction was half
// applied (balances match exactly what the acknowledged transfers imply).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "crypto/keys.hpp"
#include "ledger/embedded/embedded_ledger.hpp"
#include "ledger/ledger.hpp"
#include "process.hpp"

namespace mercato::testing {
namespace {

namespace fs = std::filesystem;
using namespace mercato::ledger;

crypto::Identity seeded(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed.fill(n);
  seed[31] = 0x5a;
  return crypto::Identity::fromSeed(seed).value();
}

TEST(CrashTest, KillNineLosesNoAcknowledgedTransaction) {
  const fs::path dir = fs::temp_directory_path() / ("mercato-crash-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  DaemonProcess daemon(MERCATOD_PATH, dir.string(), {"--dev", "--no-provider"});
  ASSERT_TRUE(daemon.start());

  constexpr int kSenders = 4;
  constexpr int kRounds = 5;
  std::vector<crypto::Identity> senders;
  for (int i = 0; i < kSenders; ++i) senders.push_back(seeded(static_cast<uint8_t>(i + 1)));
  const crypto::Identity sink = seeded(99);
  std::string chain;
  {
    LedgerConfig rc;
    rc.backend = "http";
    rc.url = daemon.url();
    auto l = createLedger(rc).value();
    chain = l->info()->chainId;
    for (const auto& s : senders)
      ASSERT_TRUE(l->submitAndWait(signTx(Tx{chain, TxKind::kMint, s.address(),
                                             l->nextNonce(s.address()).value(),
                                             MintBody{s.address(), 1'000'000'000}},
                                          s))
                      .isOk());
  }

  std::mutex mu;
  std::set<std::string> acked;  // hashes of acknowledged transfers
  int64_t ackedAmount = 0;
  std::mt19937 rng(42);

  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> loaders;
    for (int t = 0; t < kSenders; ++t) {
      loaders.emplace_back([&, t] {
        LedgerConfig rc;
        rc.backend = "http";
        rc.url = daemon.url();
        auto l = createLedger(rc);
        if (!l.isOk()) return;
        auto nonce = (*l)->nextNonce(senders[t].address());
        if (!nonce.isOk()) return;
        uint64_t n = *nonce;
        for (int i = 0; i < 100'000 && !stop; ++i) {
          const int64_t amount = 1 + i % 7;
          SignedTx tx = signTx(Tx{chain, TxKind::kTransfer, senders[t].address(), n,
                                  TransferBody{sink.address(), amount}},
                               senders[t]);
          auto r = (*l)->submitAndWait(tx);
          if (!r.isOk()) return;  // the daemon died under us: this one is unacknowledged
          ++n;
          std::lock_guard lk(mu);
          acked.insert(tx.hash);
          ackedAmount += amount;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 800));
    daemon.kill9();
    stop = true;
    for (auto& th : loaders) th.join();

    // Offline verification of what is on disk right after the crash.
    auto rep = embedded::verifyLedgerDatabase(embedded::ledgerDbPath((dir / "ledger").string()));
    ASSERT_TRUE(rep.isOk()) << "round " << round << ": " << rep.status().toString();

    ASSERT_TRUE(daemon.start()) << "restart after kill -9 in round " << round;
    LedgerConfig rc;
    rc.backend = "http";
    rc.url = daemon.url();
    auto l = createLedger(rc).value();
    std::lock_guard lk(mu);
    for (const auto& h : acked) {
      auto tx = l->transaction(h);
      ASSERT_TRUE(tx.isOk()) << "acknowledged tx " << h << " lost in round " << round;
    }
    // Nothing half-applied: the sink holds at least every acknowledged amount, and exactly what
    // the log's transfers to it add up to (unacknowledged-but-committed ones included).
    auto sinkAcct = l->account(sink.address());
    ASSERT_TRUE(sinkAcct.isOk());
    EXPECT_GE(sinkAcct->balance, ackedAmount);
    int64_t logged = 0;
    uint64_t after = 0;
    while (true) {
      auto page = l->transactions(after, 1000, sink.address());
      ASSERT_TRUE(page.isOk());
      if (page->empty()) break;
      for (const auto& e : *page) {
        logged += e.body["tx"]["body"]["amount"].get<int64_t>();
        after = e.seq;
      }
    }
    EXPECT_EQ(sinkAcct->balance, logged);
    int64_t senderTotal = 0;
    for (const auto& s : senders) senderTotal += l->account(s.address())->balance;
    EXPECT_EQ(senderTotal + sinkAcct->balance, kSenders * int64_t{1'000'000'000});
    std::printf("round %d: %zu acknowledged so far, sink %lld\n", round, acked.size(),
                static_cast<long long>(sinkAcct->balance));
  }
  EXPECT_GT(acked.size(), 100u);
  EXPECT_EQ(daemon.terminate(), 0);
  auto rep = embedded::verifyLedgerDatabase(embedded::ledgerDbPath((dir / "ledger").string()));
  EXPECT_TRUE(rep.isOk()) << rep.status().toString();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mercato::testing
