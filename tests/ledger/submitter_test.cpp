// AccountSubmitter on the embedded ledger: concurrent callers all get their transactions in with
// distinct nonces, a failing transaction in the middle of a pipeline fails alone (the ones
// behind it are signed again), and a nonce taken by another client is recovered from.
#include "ledger/submitter.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "common/clock.hpp"
#include "harness.hpp"  // key()

namespace mercato::ledger::testing {
namespace {

namespace fs = std::filesystem;
constexpr Micros kTok = kMicrosPerToken;

// A durable embedded ledger in a temp dir (real group commits, the committer thread).
struct DurableLedger {
  DurableLedger() {
    dir = fs::temp_directory_path() /
          ("mercato-submitter-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    LedgerConfig c;
    c.dataDir = dir.string();
    c.chainId = chain;
    c.devMode = true;
    c.clock = &systemClock();
    ledger = std::move(createLedger(c).value());
  }
  ~DurableLedger() {
    ledger.reset();
    fs::remove_all(dir);
  }
  void must(const crypto::Identity& id, TxKind kind, TxBody body) {
    const uint64_t nonce = ledger->nextNonce(id.address()).value();
    auto r =
        ledger->submitAndWait(signTx(Tx{chain, kind, id.address(), nonce, std::move(body)}, id));
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  fs::path dir;
  std::string chain = "submitter-chain";
  std::unique_ptr<Ledger> ledger;
};

TEST(AccountSubmitterTest, ConcurrentCallersAllLandWithDistinctNonces) {
  DurableLedger h;
  crypto::Identity alice = key(1), bob = key(2);
  h.must(alice, TxKind::kMint, MintBody{alice.address(), 1000 * kTok});
  AccountSubmitter s(*h.ledger, alice, h.chain);
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<uint64_t> nonces;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        uint64_t nonce = 0;
        auto r = s.submit(TxKind::kTransfer, TransferBody{bob.address(), 1}, &nonce);
        if (!r.isOk()) {
          ++failures;
          continue;
        }
        std::lock_guard lk(mu);
        EXPECT_TRUE(nonces.insert(nonce).second) << "nonce " << nonce << " twice";
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(nonces.size(), size_t{kThreads * kEach});
  EXPECT_EQ(h.ledger->account(bob.address())->balance, kThreads * kEach);
  EXPECT_EQ(h.ledger->account(alice.address())->nonce, 1u + kThreads * kEach);
}

TEST(AccountSubmitterTest, AFailureInThePipelineFailsAloneAndTheRestAreResigned) {
  DurableLedger h;
  crypto::Identity alice = key(1), bob = key(2);
  h.must(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok});
  AccountSubmitter s(*h.ledger, alice, h.chain);
  constexpr int kThreads = 6, kEach = 20;
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Every 7th transfer is more than alice has: refused, leaving a nonce gap behind it.
        const bool tooMuch = (t * kEach + i) % 7 == 3;
        auto r = s.submit(TxKind::kTransfer,
                          TransferBody{bob.address(), tooMuch ? 1'000 * kTok : Micros{1}});
        if (r.isOk()) {
          ++ok;
        } else if (tooMuch) {
          ++refused;
        } else {
          ++other;
          ADD_FAILURE() << r.status().toString();
        }
      }
    });
  for (auto& t : threads) t.join();
  const int expectRefused = [] {
    int n = 0;
    for (int k = 0; k < kThreads * kEach; ++k) n += k % 7 == 3;
    return n;
  }();
  EXPECT_EQ(refused.load(), expectRefused);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), kThreads * kEach - expectRefused);
  EXPECT_EQ(h.ledger->account(bob.address())->balance, ok.load());
  EXPECT_EQ(h.ledger->account(alice.address())->nonce, 1u + static_cast<uint64_t>(ok.load()));
}

TEST(AccountSubmitterTest, ANonceUsedByAnotherClientIsRecovered) {
  DurableLedger h;
  crypto::Identity alice = key(1), bob = key(2);
  h.must(alice, TxKind::kMint, MintBody{alice.address(), 10 * kTok});
  AccountSubmitter s(*h.ledger, alice, h.chain);
  ASSERT_TRUE(s.submit(TxKind::kTransfer, TransferBody{bob.address(), 1}).isOk());
  // Another process with the same key (the CLI) takes the next nonce behind our back.
  h.must(alice, TxKind::kTransfer, TransferBody{bob.address(), 1});
  uint64_t nonce = 0;
  auto r = s.submit(TxKind::kTransfer, TransferBody{bob.address(), 1}, &nonce);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(nonce, 4u);  // mint 1, ours 2, the other client's 3
  EXPECT_EQ(h.ledger->account(bob.address())->balance, 3);
}

}  // namespace
}  // namespace mercato::ledger::testing
