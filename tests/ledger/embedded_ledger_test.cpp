// EmbeddedLedger: group commit, durability across reopen, events, grace finalization on the
// FakeClock, and offline verification that catches tampering.
#include "ledger/embedded/embedded_ledger.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "harness.hpp"

namespace mercato::ledger::testing {
namespace {

namespace fs = std::filesystem;
constexpr Micros kTok = kMicrosPerToken;

class EmbeddedLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mercato-ledger-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    open();
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }
  void open(int64_t graceMs = 5'000) {
    LedgerConfig c;
    c.dataDir = dir_.string();
    c.chainId = "test-chain";
    c.devMode = true;
    c.closeGraceMs = graceMs;
    c.clock = &clock_;
    auto l = createLedger(c);
    ASSERT_TRUE(l.isOk()) << l.status().toString();
    ledger_ = std::move(*l);
  }
  Result<TxReceipt> run(const crypto::Identity& id, TxKind kind, TxBody body) {
    uint64_t nonce = ledger_->nextNonce(id.address()).value();
    return ledger_->submitAndWait(
        signTx(Tx{"test-chain", kind, id.address(), nonce, std::move(body)}, id));
  }

  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<Ledger> ledger_;
  crypto::Identity alice = key(1), bob = key(2), prov = key(3);
};

TEST_F(EmbeddedLedgerTest, AppliesAndPersistsAcrossReopen) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok}).isOk());
  ASSERT_TRUE(run(alice, TxKind::kTransfer, TransferBody{bob.address(), 40 * kTok}).isOk());
  const std::string root = ledger_->info()->stateRoot;
  ledger_.reset();
  open();
  EXPECT_EQ(ledger_->account(bob.address())->balance, 40 * kTok);
  EXPECT_EQ(ledger_->account(alice.address())->nonce, 2u);
  EXPECT_EQ(ledger_->info()->stateRoot, root);
  auto hist = ledger_->transactions(0, 100, bob.address());
  ASSERT_TRUE(hist.isOk());
  ASSERT_EQ(hist->size(), 1u);
  EXPECT_EQ((*hist)[0].kind, "transfer");
  EXPECT_EQ(ledger_->account(key(9).address()).status().code(), Code::kNotFound);
}

// Account history lives partly in the account's row (accounts.recent) and partly in
// tx_accounts; hashes are found in memory or in tx_hashes. Every entry must be found by both
// routes, in order, across spills and a reopen.
TEST_F(EmbeddedLedgerTest, HistoryAndHashLookupsFindEveryEntryAcrossSpillsAndReopen) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok}).isOk());
  std::vector<std::string> hashes;
  for (int i = 0; i < 40; ++i) {  // 40 > 2 spills of 16
    auto r = run(alice, TxKind::kTransfer, TransferBody{bob.address(), 1});
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    hashes.push_back(r->hash);
  }
  auto check = [&] {
    auto all = ledger_->transactions(0, 1000, bob.address());
    ASSERT_TRUE(all.isOk()) << all.status().toString();
    ASSERT_EQ(all->size(), 40u);
    for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].hash, hashes[i]);
    // Paging: after the 10th entry, 20 entries.
    auto page = ledger_->transactions((*all)[9].seq, 20, bob.address());
    ASSERT_TRUE(page.isOk());
    ASSERT_EQ(page->size(), 20u);
    EXPECT_EQ(page->front().hash, hashes[10]);
    EXPECT_EQ(page->back().hash, hashes[29]);
    auto alices = ledger_->transactions(0, 1000, alice.address());
    ASSERT_TRUE(alices.isOk());
    EXPECT_EQ(alices->size(), 41u);  // the mint and the transfers
    for (const auto& h : hashes) {
      auto r = ledger_->transaction(h);
      ASSERT_TRUE(r.isOk()) << h << ": " << r.status().toString();
      EXPECT_EQ(r->hash, h);
    }
    std::string unknown = hashes[0];
    unknown[63] = unknown[63] == '0' ? '1' : '0';
    EXPECT_EQ(ledger_->transaction(unknown).status().code(), Code::kNotFound);
    EXPECT_EQ(ledger_->transaction("not-a-hash").status().code(), Code::kNotFound);
  };
  check();
  ledger_.reset();
  open();
  check();
}

// A database written by the previous storage layout (no accounts.recent, UNIQUE(txlog.hash), no
// tx_hashes) opens: it is migrated in place, keeps its state root, finds its old entries and
// takes new ones.
TEST_F(EmbeddedLedgerTest, LayoutOneDatabaseIsMigratedOnOpen) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok}).isOk());
  std::vector<std::string> hashes;
  for (int i = 0; i < 20; ++i) {
    auto r = run(alice, TxKind::kTransfer, TransferBody{bob.address(), 1});
    ASSERT_TRUE(r.isOk());
    hashes.push_back(r->hash);
  }
  const std::string root = ledger_->info()->stateRoot;
  ledger_.reset();
  const std::string path = embedded::ledgerDbPath(dir_.string());
  {
    // Rewrite the file as the layout-1 code left it: every touch in tx_accounts.
    SQLite::Database w(path, SQLite::OPEN_READWRITE);
    std::vector<std::string> withRecent;
    SQLite::Statement q(w, "SELECT address FROM accounts WHERE recent IS NOT NULL");
    while (q.executeStep()) withRecent.push_back(q.getColumn(0).getString());
    embedded::StateMachine view(w, false);
    for (const auto& addr : withRecent) {
      for (uint64_t s : view.entriesTouching(addr, 0, 1000))
        w.exec("INSERT OR IGNORE INTO tx_accounts(address, seq) VALUES('" + addr + "', " +
               std::to_string(s) + ")");
    }
    w.exec(R"sql(
ALTER TABLE accounts DROP COLUMN recent;
DROP TABLE tx_hashes;
DELETE FROM meta WHERE key IN ('layout', 'hash_index_seq');
CREATE TABLE txlog_v1(
  seq INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, entry_hash TEXT NOT NULL,
  time INTEGER NOT NULL, kind TEXT NOT NULL, sender TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO txlog_v1 SELECT * FROM txlog;
DROP TABLE txlog;
ALTER TABLE txlog_v1 RENAME TO txlog;
)sql");
  }
  ASSERT_TRUE(embedded::verifyLedgerDatabase(path).isOk());  // offline verify reads layout 1
  open();
  EXPECT_EQ(ledger_->info()->stateRoot, root);
  for (const auto& h : hashes) EXPECT_TRUE(ledger_->transaction(h).isOk()) << h;
  auto r = run(alice, TxKind::kTransfer, TransferBody{bob.address(), 1});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_TRUE(ledger_->transaction(r->hash).isOk());
  auto hist = ledger_->transactions(0, 1000, bob.address());
  ASSERT_TRUE(hist.isOk());
  ASSERT_EQ(hist->size(), 21u);
  EXPECT_EQ(hist->back().hash, r->hash);
  ledger_.reset();
  auto v = embedded::verifyLedgerDatabase(path);
  ASSERT_TRUE(v.isOk()) << v.status().toString();
  EXPECT_EQ(v->entries, 23u);
  SQLite::Database check(path, SQLite::OPEN_READONLY);
  SQLite::Statement layout(check, "SELECT value FROM meta WHERE key = 'layout'");
  ASSERT_TRUE(layout.executeStep());
  EXPECT_EQ(layout.getColumn(0).getString(), "2");
}

// The background checkpointer must actually copy WAL frames into the database file while the
// ledger runs (a connection that never read the database used to make every checkpoint a silent
// no-op, so the WAL grew without bound).
TEST_F(EmbeddedLedgerTest, WalIsCheckpointedIntoTheDatabaseWhileRunning) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100'000 * kTok}).isOk());
  // One transfer per group commit: each commit appends several WAL frames, so 1,500 of them
  // pass the checkpoint threshold (4,000 frames).
  for (uint64_t nonce = 2; nonce < 1'500; ++nonce)
    ASSERT_TRUE(ledger_
                    ->submitAndWait(signTx(Tx{"test-chain", TxKind::kTransfer, alice.address(),
                                              nonce, TransferBody{bob.address(), 1}},
                                           alice))
                    .isOk());
  const fs::path db = dir_ / "ledger.db";
  // The checkpointer runs on its own thread: give it a bounded while to finish.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // The 1,500 transfers take ~1 MiB once checkpointed; without a checkpoint the file stays at
  // the few pages of the schema.
  constexpr uintmax_t kCheckpointed = 512u << 10;
  while (fs::file_size(db) < kCheckpointed && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(fs::file_size(db), kCheckpointed) << "no checkpoint reached " << db;
  EXPECT_EQ(ledger_->account(bob.address())->balance, 1'498);
}

TEST_F(EmbeddedLedgerTest, BadSignatureIsRejectedBeforeQueueing) {
  SignedTx tx = signTx(
      Tx{"test-chain", TxKind::kMint, alice.address(), 1, MintBody{alice.address(), kTok}}, alice);
  tx.signature.bytes[0] ^= 1;
  auto r = ledger_->submitAndWait(tx);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(ledger_->info()->headSeq, 1u);  // genesis only
}

TEST_F(EmbeddedLedgerTest, ConcurrentSubmissionsAreGroupCommitted) {
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<crypto::Identity> senders;
  for (int i = 0; i < kThreads; ++i) {
    senders.push_back(key(static_cast<uint8_t>(10 + i)));
    ASSERT_TRUE(
        run(senders.back(), TxKind::kMint, MintBody{senders.back().address(), kTok}).isOk());
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread pipelines its whole nonce sequence without waiting: the committer must
      // apply them in submission order.
      std::vector<std::future<Result<TxReceipt>>> futures;
      for (int i = 0; i < kPerThread; ++i) {
        auto p = std::make_shared<std::promise<Result<TxReceipt>>>();
        futures.push_back(p->get_future());
        ledger_->submit(signTx(Tx{"test-chain", TxKind::kTransfer, senders[t].address(),
                                  static_cast<uint64_t>(i + 2), TransferBody{bob.address(), 1}},
                               senders[t]),
                        [p](Result<TxReceipt> r) { p->set_value(std::move(r)); });
      }
      for (auto& f : futures) ok += f.get().isOk() ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(ledger_->account(bob.address())->balance, kThreads * kPerThread);
}

TEST_F(EmbeddedLedgerTest, EventsLongPollWakesOnCommitAndTimesOutOnClock) {
  const uint64_t head = ledger_->info()->eventSeq;
  std::promise<void> woke;
  ledger_->notifyEvents(head, 60'000, [&] { woke.set_value(); });
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), kTok}).isOk());
  ASSERT_EQ(woke.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto evs = ledger_->events(head, 10, 0);
  ASSERT_TRUE(evs.isOk());
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].type, "account.mint");

  // Nothing new: the waiter fires when the (fake) timeout passes, not before.
  const uint64_t now = ledger_->info()->eventSeq;
  std::atomic<bool> fired{false};
  ledger_->notifyEvents(now, 30'000, [&] { fired = true; });
  clock_.advance(Millis(29'000));
  EXPECT_FALSE(fired);
  clock_.advance(Millis(1'000));
  EXPECT_TRUE(fired);
}

TEST_F(EmbeddedLedgerTest, ClosingEscrowIsRefundedWhenGraceEndsOnTheClock) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok}).isOk());
  Harness h;
  ASSERT_TRUE(run(prov, TxKind::kProviderRegister, h.providerBody()).isOk());
  auto open = run(alice, TxKind::kEscrowOpen, EscrowOpenBody{prov.address(), 10 * kTok, {}});
  ASSERT_TRUE(open.isOk()) << open.status().toString();
  const std::string id = open->result["escrow"];
  ASSERT_TRUE(run(alice, TxKind::kEscrowClose, EscrowCloseBody{id}).isOk());
  EXPECT_EQ(ledger_->escrow(id)->state, EscrowState::kClosing);
  const uint64_t cursor = ledger_->info()->eventSeq;
  std::promise<void> closed;
  ledger_->notifyEvents(cursor, 600'000, [&] { closed.set_value(); });
  clock_.advance(Millis(6'000));  // past the 5 s grace; the 1 s tick finalizes it
  ASSERT_EQ(closed.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto e = ledger_->escrow(id);
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->state, EscrowState::kClosed);
  EXPECT_EQ(e->refunded, 10 * kTok);
  EXPECT_EQ(ledger_->account(alice.address())->balance, 100 * kTok);
}

TEST_F(EmbeddedLedgerTest, OfflineVerifyPassesAndCatchesTampering) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok}).isOk());
  ASSERT_TRUE(run(alice, TxKind::kTransfer, TransferBody{bob.address(), kTok}).isOk());
  ledger_.reset();
  const std::string db = embedded::ledgerDbPath(dir_.string());
  auto ok = embedded::verifyLedgerDatabase(db);
  ASSERT_TRUE(ok.isOk()) << ok.status().toString();
  EXPECT_EQ(ok->entries, 3u);
  {
    SQLite::Database w(db, SQLite::OPEN_READWRITE);
    w.exec("UPDATE accounts SET balance = balance + 1 WHERE address = '" + bob.address() + "'");
  }
  auto bad = embedded::verifyLedgerDatabase(db);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("state root mismatch"), std::string::npos);
  {
    SQLite::Database w(db, SQLite::OPEN_READWRITE);
    w.exec("UPDATE accounts SET balance = balance - 1 WHERE address = '" + bob.address() + "'");
    w.exec("UPDATE txlog SET time = time + 1 WHERE seq = 2");
  }
  bad = embedded::verifyLedgerDatabase(db);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("chain hash mismatch"), std::string::npos)
      << bad.status().message();
}

TEST(LedgerFactory, UnknownBackendIsAnError) {
  LedgerConfig c;
  c.backend = "postgres";
  auto r = createLedger(c);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("expected one of embedded, http"), std::string::npos);
}

}  // namespace
}  // namespace mercato::ledger::testing
