// Property test: random transaction sequences, valid and invalid, against the state machine.
// After every transaction: total supply is conserved except by mint, no balance is negative, no
// escrow pays out more than was deposited. After every sequence: replaying the log from genesis
// reproduces the state root. 100,000 transactions by default (MERCATO_PROPERTY_TXS overrides).
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "harness.hpp"
#include "ledger/embedded/embedded_ledger.hpp"
#include "ledger/embedded/market_rules.hpp"

namespace mercato::ledger::testing {
namespace {

struct Totals {
  Micros balances = 0;
  Micros held = 0;
  Micros minBalance = 0;
  bool escrowOverpaid = false;
};

Totals totals(SQLite::Database& db) {
  Totals t;
  SQLite::Statement a(db,
                      "SELECT COALESCE(SUM(balance),0), COALESCE(MIN(balance),0) FROM accounts");
  a.executeStep();
  t.balances = a.getColumn(0).getInt64();
  t.minBalance = a.getColumn(1).getInt64();
  SQLite::Statement e(db, "SELECT record FROM escrows");
  while (e.executeStep()) {
    auto esc = escrowFromJson(nlohmann::json::parse(e.getColumn(0).getString())).value();
    t.held += esc.balance();
    if (esc.claimed + esc.refunded > esc.deposited || esc.claimed < 0 || esc.refunded < 0)
      t.escrowOverpaid = true;
  }
  t.held += embedded::MarketRules::held(db);  // deposits of open orders and bids
  return t;
}

TEST(LedgerProperty, RandomSequencesConserveSupplyAndReplay) {
  const char* env = std::getenv("MERCATO_PROPERTY_TXS");
  const int totalTxs = env ? std::atoi(env) : 100'000;
  constexpr int kPerSequence = 500;
  std::vector<crypto::Identity> keys;
  for (uint8_t i = 1; i <= 6; ++i) keys.push_back(key(i));
  std::mt19937_64 rng(20261123);
  int applied = 0, rejected = 0, forged = 0;
  std::map<TxKind, int> appliedByKind;

  for (int seqNo = 0; seqNo * kPerSequence < totalTxs; ++seqNo) {
    Harness h(/*dev=*/true, /*graceMs=*/rng() % 3 * 1000);
    std::vector<std::string> escrows{"esc_doesnotexist"};
    std::vector<std::string> orders{"ord_doesnotexist"}, bids{"bid_doesnotexist"};
    std::map<std::string, const crypto::Identity*> bidOwner;
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    auto amount = [&]() -> Micros {
      switch (rng() % 4) {
        case 0:
          return 1 + rng() % 100;
        case 1:
          return 1 + rng() % 1'000'000;
        case 2:
          return 1 + rng() % 100'000'000;
        default:
          return 1 + rng() % 10'000'000'000;  // usually an overdraft
      }
    };
    std::map<std::string, Usage> lastUsage;
    for (int i = 0; i < kPerSequence; ++i) {
      const Micros supplyBefore = h.sm.totalSupply();
      const crypto::Identity* signer = &keys[pick(keys.size())];
      const crypto::Identity& other = keys[pick(keys.size())];
      TxKind kind;
      TxBody body;
      switch (rng() % 15) {
        case 0:
          kind = TxKind::kMint;
          body = MintBody{other.address(), amount()};
          break;
        case 1:
          kind = TxKind::kTransfer;
          body = TransferBody{other.address(), amount()};
          break;
        case 2:
          kind = TxKind::kProviderRegister;
          body = h.providerBody(
              {static_cast<Micros>(rng() % 5000), static_cast<Micros>(rng() % 5000),
               static_cast<Micros>(rng() % 5000), static_cast<Micros>(rng() % 5000)});
          break;
        case 3:
          kind = TxKind::kProviderDeregister;
          body = DeregisterBody{};
          break;
        case 4:
          kind = TxKind::kEscrowOpen;
          body = EscrowOpenBody{other.address(), amount(), {}};
          break;
        case 5:
          kind = TxKind::kEscrowDeposit;
          body = EscrowDepositBody{escrows[pick(escrows.size())], amount()};
          break;
        case 6:
        case 7: {
          kind = TxKind::kEscrowClaim;
          const std::string id = escrows[pick(escrows.size())];
          Usage u = lastUsage[id];
          u.cpuMillis += static_cast<int64_t>(rng() % 100'000) - 5'000;  // sometimes goes down
          u.memMibSeconds += rng() % 10'000;
          u.egressBytes += rng() % 100'000'000;
          u.requests += rng() % 5'000;
          if (u.cpuMillis < 0) u.cpuMillis = 0;
          body = EscrowClaimBody{id, u};
          break;
        }
        case 8:
          kind = TxKind::kEscrowClose;
          body = EscrowCloseBody{escrows[pick(escrows.size())]};
          break;
        case 9: {
          kind = TxKind::kOrderCreate;
          OrderCreateBody b;
          b.requirements.resources = {{"c", static_cast<Millicores>(250 + rng() % 3 * 500),
                                       static_cast<Bytes>(rng() % 3) << 28, 0,
                                       static_cast<int64_t>(1 + rng() % 3)}};
          if (rng() % 2) b.maxPrice.cpuSecond = static_cast<Micros>(rng() % 5000);
          b.deposit = amount();
          b.ttlMs = 1 + static_cast<int64_t>(rng() % 20'000);
          body = b;
          break;
        }
        case 10:
          kind = TxKind::kOrderClose;
          body = OrderCloseBody{orders[pick(orders.size())]};
          break;
        case 11:
        case 12:
          kind = TxKind::kBidCreate;
          body = BidCreateBody{orders[pick(orders.size())],
                               Prices{static_cast<Micros>(rng() % 5000), 1, 1, 1},
                               1 + static_cast<int64_t>(rng() % 20'000)};
          break;
        case 13:
          kind = rng() % 2 ? TxKind::kLeaseCreate : TxKind::kBidClose;
          if (kind == TxKind::kLeaseCreate)
            body = LeaseCreateBody{bids[pick(bids.size())]};
          else {
            const std::string id = bids[pick(bids.size())];
            body = BidCloseBody{id};
            if (bidOwner.count(id) && rng() % 2) signer = bidOwner[id];  // usually the right one
          }
          break;
        default:
          kind = TxKind::kAuditorAttest;
          body = AuditorAttestBody{other.address(), {{"tier", rng() % 2 ? "a" : "b"}}};
          break;
      }
      SignedTx tx = h.sign(*signer, kind, body);
      if (rng() % 20 == 0) tx.tx.nonce += 1 + rng() % 3;  // wrong nonce
      // Through the wire form, like the ledger's HTTP intake.
      nlohmann::json wire = toJson(tx);
      if (rng() % 25 == 0) {  // forged: body changed after signing
        wire["tx"]["nonce"] = wire["tx"]["nonce"].get<uint64_t>() + 1000;
      }
      auto decoded = decodeSignedTx(wire);
      ASSERT_TRUE(decoded.isOk()) << decoded.status().toString();
      if (!verifySignature(*decoded).isOk()) {
        ++forged;
        continue;
      }
      h.now += rng() % 2000;
      // Finalize due closings first, as the committer does before each batch.
      for (const auto& id : h.sm.dueClosings(h.now)) {
        SQLite::Transaction t(h.db);
        ASSERT_TRUE(h.sm.finalizeClosing(id, h.now).isOk());
        t.commit();
      }
      for (const auto& id : h.sm.dueMarketExpiries(h.now)) {
        SQLite::Transaction t(h.db);
        ASSERT_TRUE(h.sm.expireMarket(id, h.now).isOk()) << id;
        t.commit();
      }
      auto r = h.apply(*decoded);
      if (r.isOk()) {
        ++applied;
        ++appliedByKind[kind];
        if (kind == TxKind::kEscrowOpen) escrows.push_back(r->receipt.result["escrow"]);
        if (kind == TxKind::kOrderCreate) orders.push_back(r->receipt.result["order"]);
        if (kind == TxKind::kBidCreate) {
          bids.push_back(r->receipt.result["bid"]);
          bidOwner[bids.back()] = signer;
        }
        if (kind == TxKind::kLeaseCreate) escrows.push_back(r->receipt.result["escrow"]);
        if (kind == TxKind::kEscrowClaim)
          lastUsage[std::get<EscrowClaimBody>(body).escrow] = std::get<EscrowClaimBody>(body).usage;
      } else {
        ++rejected;
        ASSERT_NE(r.status().code(), Code::kInternal) << r.status().toString();
      }
      const Totals after = totals(h.db);
      const Micros supply = h.sm.totalSupply();
      ASSERT_GE(after.minBalance, 0) << "negative balance after tx " << i;
      ASSERT_FALSE(after.escrowOverpaid) << "escrow paid out more than deposited after tx " << i;
      ASSERT_EQ(after.balances + after.held, supply)
          << "supply not conserved after tx " << i << " (" << txKindName(kind) << ", "
          << (r.isOk() ? "applied" : r.status().toString()) << ")";
      if (!(r.isOk() && kind == TxKind::kMint)) {
        ASSERT_EQ(supply, supplyBefore) << "supply changed without a mint";
      } else {
        ASSERT_EQ(supply, supplyBefore + std::get<MintBody>(body).amount);
      }
    }
    auto root = embedded::replayLog(readLog(h.db));
    ASSERT_TRUE(root.isOk()) << root.status().toString();
    ASSERT_EQ(*root, h.sm.stateRoot()) << "replay diverged in sequence " << seqNo;
  }
  std::printf("property: %d applied, %d rejected by rules, %d forged signatures dropped\n", applied,
              rejected, forged);
  EXPECT_GT(applied, totalTxs / 10);
  EXPECT_GT(rejected, totalTxs / 20);
  EXPECT_GT(forged, 0);
  // Every kind, market ones included, must actually have been exercised.
  for (TxKind k :
       {TxKind::kOrderCreate, TxKind::kOrderClose, TxKind::kBidCreate, TxKind::kBidClose,
        TxKind::kLeaseCreate, TxKind::kAuditorAttest, TxKind::kEscrowClaim, TxKind::kEscrowOpen})
    EXPECT_GT(appliedByKind[k], 0) << txKindName(k) << " was never applied";
}

}  // namespace
}  // namespace mercato::ledger::testing
