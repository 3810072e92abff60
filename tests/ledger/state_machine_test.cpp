// Rules of the embedded ledger's state machine, exercised directly on in-memory SQLite.
#include <gtest/gtest.h>

#include "harness.hpp"
#include "ledger/embedded/embedded_ledger.hpp"

namespace mercato::ledger::testing {
namespace {

constexpr Micros kTok = kMicrosPerToken;

class StateMachineTest : public ::testing::Test {
 protected:
  Harness h;
  crypto::Identity alice = key(1), bob = key(2), prov = key(3), mallory = key(4);

  void SetUp() override {
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{alice.address(), 1000 * kTok}).isOk());
    ASSERT_TRUE(h.run(prov, TxKind::kProviderRegister, h.providerBody()).isOk());
    // bob and mallory exist (they hold 1 micro-unit) so rule checks, not "unknown account",
    // decide their transactions.
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{bob.address(), 1}).isOk());
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{mallory.address(), 1}).isOk());
  }

  std::string openEscrow(Micros deposit) {
    auto r = h.run(alice, TxKind::kEscrowOpen, EscrowOpenBody{prov.address(), deposit, {}});
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r->receipt.result["escrow"].get<std::string>();
  }
};

TEST_F(StateMachineTest, TransferMovesMoneyAndBumpsNonce) {
  auto r = h.run(alice, TxKind::kTransfer, TransferBody{bob.address(), 250 * kTok});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(h.balance(alice.address()), 750 * kTok);
  EXPECT_EQ(h.balance(bob.address()), 250 * kTok + 1);
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].type, "account.transfer");
  EXPECT_EQ(h.nonces[alice.address()], 4u);
}

TEST_F(StateMachineTest, OverdraftUnknownAccountAndSelfTransferAreRejected) {
  h.expectRejected(
      [&] {
        return h.run(alice, TxKind::kTransfer, TransferBody{bob.address(), 1001 * kTok});
      },
      Code::kFailedPrecondition, "overdraft");
  h.expectRejected(
      [&] {
        return h.run(key(9), TxKind::kTransfer, TransferBody{bob.address(), 1});
      },
      Code::kNotFound, "unknown");
  h.expectRejected(
      [&] {
        return h.run(alice, TxKind::kTransfer, TransferBody{alice.address(), 1});
      },
      Code::kInvalidArgument, "yourself");
  EXPECT_EQ(h.balance(alice.address()), 1000 * kTok);
}

TEST_F(StateMachineTest, ReplayAndNonceGapsAreRejected) {
  SignedTx tx = h.sign(alice, TxKind::kTransfer, TransferBody{bob.address(), kTok});
  ASSERT_TRUE(h.apply(tx).isOk());
  h.expectRejected([&] { return h.apply(tx); }, Code::kFailedPrecondition, "replay rejected");
  SignedTx gap = signTx(
      Tx{h.chain, TxKind::kTransfer, alice.address(), 9, TransferBody{bob.address(), 1}}, alice);
  h.expectRejected([&] { return h.apply(gap); }, Code::kFailedPrecondition, "expected 5");
  SignedTx other = signTx(
      Tx{"other-chain", TxKind::kTransfer, alice.address(), 5, TransferBody{bob.address(), 1}},
      alice);
  h.expectRejected([&] { return h.apply(other); }, Code::kInvalidArgument, "this ledger is");
}

TEST_F(StateMachineTest, MintOnlyInDevModeAndCapped) {
  Harness prod(/*dev=*/false);
  auto r = prod.run(alice, TxKind::kMint, MintBody{alice.address(), kTok});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  Harness capped(true, 0, 10 * kTok);
  EXPECT_FALSE(capped.run(alice, TxKind::kMint, MintBody{alice.address(), 11 * kTok}).isOk());
  EXPECT_TRUE(capped.run(alice, TxKind::kMint, MintBody{alice.address(), 10 * kTok}).isOk());
  EXPECT_EQ(capped.sm.totalSupply(), 10 * kTok);
}

TEST_F(StateMachineTest, ProviderRegistryLifecycle) {
  h.expectRejected([&] { return h.run(prov, TxKind::kProviderRegister, h.providerBody()); },
                   Code::kAlreadyExists, "already registered");
  h.expectRejected([&] { return h.run(bob, TxKind::kProviderUpdate, h.providerBody()); },
                   Code::kNotFound, "not registered");
  ASSERT_TRUE(h.run(prov, TxKind::kProviderUpdate, h.providerBody({5, 6, 7, 8})).isOk());
  ASSERT_TRUE(h.run(prov, TxKind::kProviderDeregister, DeregisterBody{}).isOk());
  h.expectRejected(
      [&] {
        return h.run(alice, TxKind::kEscrowOpen, EscrowOpenBody{prov.address(), kTok, {}});
      },
      Code::kNotFound, "not a registered provider");
  // Re-registering after deregistration is allowed.
  EXPECT_TRUE(h.run(prov, TxKind::kProviderRegister, h.providerBody()).isOk());
}

TEST_F(StateMachineTest, EscrowOpenSnapshotsTermsAndChecksExpectedTerms) {
  std::string id = openEscrow(100 * kTok);
  EXPECT_EQ(id.rfind("esc_", 0), 0u);
  EXPECT_EQ(h.balance(alice.address()), 900 * kTok);
  // A later price change does not touch the open escrow's terms.
  ASSERT_TRUE(h.run(prov, TxKind::kProviderUpdate, h.providerBody({9, 9, 9, 9})).isOk());
  Prices stale{1000, 2000, 3000, 4000};
  h.expectRejected(
      [&] {
        return h.run(alice, TxKind::kEscrowOpen, EscrowOpenBody{prov.address(), kTok, stale});
      },
      Code::kFailedPrecondition, "now charges");
  h.expectRejected(
      [&] {
        return h.run(alice, TxKind::kEscrowOpen, EscrowOpenBody{prov.address(), 5000 * kTok, {}});
      },
      Code::kFailedPrecondition, "overdraft");
}

TEST_F(StateMachineTest, ClaimsPayCumulativeUsageAndMustBeMonotonic) {
  std::string id = openEscrow(100 * kTok);
  // 10 cpu-seconds at 1000 micro/cpu-s = 10,000; 1024 MiB-s = 1 GiB-s at 2000 = 2,000.
  Usage u{10'000, 1024, 0, 0};
  auto r = h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, u});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->receipt.result["paid"], 12'000);
  EXPECT_EQ(h.balance(prov.address()), 12'000);
  // The same cumulative usage again pays nothing more.
  r = h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, u});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->receipt.result["paid"], 0);
  Usage lower{9'000, 2048, 0, 0};
  h.expectRejected(
      [&] {
        return h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, lower});
      },
      Code::kFailedPrecondition, "cpuMillis went down");
  h.expectRejected(
      [&] {
        return h.run(mallory, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{20'000, 0, 0, 0}});
      },
      Code::kPermissionDenied, "belongs to provider");
  h.expectRejected(
      [&] {
        return h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{"esc_nope", u});
      },
      Code::kNotFound, "does not exist");
}

TEST_F(StateMachineTest, StorageIsPricedFromTheTermsAndMonotonicAcrossClaims) {
  // An escrow opened before the provider priced storage keeps storage free.
  std::string before = openEscrow(10 * kTok);
  ASSERT_TRUE(
      h.run(prov, TxKind::kProviderUpdate, h.providerBody({1000, 2000, 3000, 4000, 7200})).isOk());
  std::string id = openEscrow(100 * kTok);
  auto free =
      h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{before, Usage{0, 0, 0, 0, 1 << 30}});
  ASSERT_TRUE(free.isOk()) << free.status().toString();
  EXPECT_EQ(free->receipt.result["paid"], 0);

  // 2 GiB for an hour = 2 * 1024 * 3600 MiB-s at 7200 per GiB-hour = 14,400; plus 1 cpu-s.
  Usage u{1'000, 0, 0, 0, 2 * 1024 * 3600};
  auto r = h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, u});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->receipt.result["paid"], 1'000 + 14'400);
  SQLite::Statement q(h.db, "SELECT record FROM escrows WHERE id = ?");
  q.bind(1, id);
  ASSERT_TRUE(q.executeStep());
  auto e = escrowFromJson(nlohmann::json::parse(q.getColumn(0).getString()));
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ(e->usage.storageMibSeconds, 2 * 1024 * 3600);
  EXPECT_EQ(e->terms.storageGibHour, 7200);
  EXPECT_EQ(e->owed, 15'400);

  // Storage may not go down, even while everything else goes up.
  Usage lower{5'000, 10, 10, 10, 2 * 1024 * 3600 - 1};
  h.expectRejected(
      [&] {
        return h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, lower});
      },
      Code::kFailedPrecondition,
      "tx.body.usage.storageMibSeconds went down from 7372800 to 7372799");
  // A claim that leaves storage out says 0: also a decrease.
  h.expectRejected(
      [&] {
        return h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{5'000, 0, 0, 0}});
      },
      Code::kFailedPrecondition, "storageMibSeconds went down");
  // More storage pays only the difference.
  u.storageMibSeconds += 1024 * 3600;
  r = h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, u});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->receipt.result["paid"], 7'200);

  // The log with storage claims replays to the same state (what `mercato ledger verify` does).
  embedded::LogReplayer replayer;
  for (const auto& rec : readLog(h.db)) ASSERT_TRUE(replayer.add(rec).isOk()) << rec.seq;
  EXPECT_EQ(replayer.stateRoot(), h.sm.stateRoot());
  EXPECT_EQ(replayer.headHash(), h.sm.headHash());
}

// Records without storage are stored byte for byte as before it existed, so the state root of
// an old ledger does not change under this code.
TEST_F(StateMachineTest, RecordsWithoutStorageKeepTheirOldJson) {
  std::string id = openEscrow(10 * kTok);
  ASSERT_TRUE(h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{1, 2, 3, 4}}).isOk());
  SQLite::Statement q(h.db, "SELECT record FROM escrows WHERE id = ?");
  q.bind(1, id);
  ASSERT_TRUE(q.executeStep());
  const std::string record = q.getColumn(0).getString();
  EXPECT_EQ(record.find("storage"), std::string::npos) << record;
  EXPECT_NE(
      record.find(R"("usage":{"cpuMillis":1,"egressBytes":3,"memMibSeconds":2,"requests":4})"),
      std::string::npos)
      << record;
  SQLite::Statement p(h.db, "SELECT record FROM providers");
  ASSERT_TRUE(p.executeStep());
  const std::string provider = p.getColumn(0).getString();
  EXPECT_NE(provider.find(R"("prices":{"cpuSecond":1000,"egressGib":3000,"memGibSecond":2000,)"
                          R"("requests1k":4000})"),
            std::string::npos)
      << provider;
}

TEST_F(StateMachineTest, ExhaustionPaysAtMostTheBalanceAndTopUpReopens) {
  std::string id = openEscrow(10'000);
  // Owed 50,000 against a 10,000 deposit: pays 10,000 and the escrow is exhausted.
  auto r = h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{50'000, 0, 0, 0}});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->receipt.result["paid"], 10'000);
  EXPECT_EQ(r->receipt.result["state"], "exhausted");
  EXPECT_EQ(r->receipt.result["unpaid"], 40'000);
  // A partial top-up pays some of the debt but stays exhausted.
  r = h.run(alice, TxKind::kEscrowDeposit, EscrowDepositBody{id, 30'000});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->receipt.result["state"], "exhausted");
  r = h.run(alice, TxKind::kEscrowDeposit, EscrowDepositBody{id, 20'000});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->receipt.result["state"], "open");
  EXPECT_EQ(r->receipt.result["balance"], 10'000);
  EXPECT_EQ(h.balance(prov.address()), 50'000);
  h.expectRejected(
      [&] {
        return h.run(bob, TxKind::kEscrowDeposit, EscrowDepositBody{id, 1});
      },
      Code::kPermissionDenied, "belongs to publisher");
}

TEST_F(StateMachineTest, CloseGivesTheProviderAGracePeriodThenRefunds) {
  std::string id = openEscrow(100'000);
  ASSERT_TRUE(h.run(alice, TxKind::kEscrowClose, EscrowCloseBody{id}).isOk());
  h.expectRejected([&] { return h.run(alice, TxKind::kEscrowClose, EscrowCloseBody{id}); },
                   Code::kFailedPrecondition, "already closing");
  h.expectRejected(
      [&] {
        return h.run(alice, TxKind::kEscrowDeposit, EscrowDepositBody{id, 1});
      },
      Code::kFailedPrecondition, "closing");
  EXPECT_TRUE(h.sm.dueClosings(h.now + 9'999).empty());
  // Final claim inside the grace period.
  h.now += 5'000;
  ASSERT_TRUE(
      h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{30'000, 0, 0, 0}}).isOk());
  h.now += 5'000;
  auto due = h.sm.dueClosings(h.now);
  ASSERT_EQ(due, std::vector<std::string>{id});
  {
    SQLite::Transaction t(h.db);
    auto f = h.sm.finalizeClosing(id, h.now);
    ASSERT_TRUE(f.isOk()) << f.status().toString();
    t.commit();
  }
  EXPECT_EQ(h.balance(alice.address()), 1000 * kTok - 30'000);
  EXPECT_EQ(h.balance(prov.address()), 30'000);
  h.expectRejected(
      [&] {
        return h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{40'000, 0, 0, 0}});
      },
      Code::kFailedPrecondition, "closed");
}

TEST_F(StateMachineTest, ProviderCloseRefundsImmediately) {
  std::string id = openEscrow(100'000);
  auto r = h.run(prov, TxKind::kEscrowClose, EscrowCloseBody{id});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->receipt.result["state"], "closed");
  EXPECT_EQ(h.balance(alice.address()), 1000 * kTok);
  h.expectRejected([&] { return h.run(mallory, TxKind::kEscrowClose, EscrowCloseBody{id}); },
                   Code::kPermissionDenied, "cannot close");
}

TEST_F(StateMachineTest, LogIsHashChainedAndReplays) {
  std::string id = openEscrow(100'000);
  ASSERT_TRUE(h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{1000, 0, 0, 0}}).isOk());
  embedded::LogReplayer replayer;
  std::string prev;
  for (const auto& r : readLog(h.db)) {
    EXPECT_NE(r.entryHash, prev);
    prev = r.entryHash;
    ASSERT_TRUE(replayer.add(r).isOk()) << "entry " << r.seq;
  }
  EXPECT_EQ(replayer.stateRoot(), h.sm.stateRoot());
  EXPECT_EQ(replayer.headHash(), h.sm.headHash());
}

}  // namespace
}  // namespace mercato::ledger::testing
