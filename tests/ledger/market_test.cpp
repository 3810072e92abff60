// Marketplace rules of the embedded ledger (orders, bids, leases, auditors, expiry), exercised
// directly on the state machine over in-memory SQLite.
#include <gtest/gtest.h>

#include "harness.hpp"
#include "ledger/embedded/embedded_ledger.hpp"
#include "ledger/embedded/market_rules.hpp"

namespace mercato::ledger::testing {
namespace {

constexpr Micros kTok = kMicrosPerToken;
constexpr Micros kBidDeposit = embedded::GenesisParams::kDefaultBidDeposit;

class MarketTest : public ::testing::Test {
 protected:
  Harness h;
  crypto::Identity alice = key(1), bob = key(2), prov = key(3), prov2 = key(5), auditor = key(6);

  void SetUp() override {
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{alice.address(), 1000 * kTok}).isOk());
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{bob.address(), 10 * kTok}).isOk());
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{prov.address(), 10 * kTok}).isOk());
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{prov2.address(), 10 * kTok}).isOk());
    ASSERT_TRUE(h.run(alice, TxKind::kMint, MintBody{auditor.address(), 1}).isOk());
    ProviderBody p = h.providerBody();
    p.attributes = {{"region", "eu"}};
    ASSERT_TRUE(h.run(prov, TxKind::kProviderRegister, p).isOk());
    p.attributes = {{"region", "us"}};
    ASSERT_TRUE(h.run(prov2, TxKind::kProviderRegister, p).isOk());
  }

  OrderCreateBody orderBody(Micros deposit = 50 * kTok, int64_t ttlMs = 60'000) {
    OrderCreateBody b;
    b.requirements.resources = {{"web", 500, 256 << 20, 0, 2}};
    b.maxPrice.cpuSecond = 2000;
    b.deposit = deposit;
    b.ttlMs = ttlMs;
    return b;
  }
  std::string createOrder(OrderCreateBody b) {
    auto r = h.run(alice, TxKind::kOrderCreate, std::move(b));
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? r->receipt.result["order"].get<std::string>() : "";
  }
  Result<embedded::Applied> bid(const crypto::Identity& who, const std::string& order,
                                Micros cpuSecond, int64_t ttlMs = 30'000) {
    return h.run(who, TxKind::kBidCreate, BidCreateBody{order, Prices{cpuSecond, 1, 1, 1}, ttlMs});
  }
  std::string bidId(const Result<embedded::Applied>& r) {
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? r->receipt.result["bid"].get<std::string>() : "";
  }
  Order order(const std::string& id) { return *embedded::MarketRules::order(h.db, id); }
  Bid getBid(const std::string& id) { return *embedded::MarketRules::bid(h.db, id); }
  void expire(const std::vector<std::string>& expected) {
    ASSERT_EQ(h.sm.dueMarketExpiries(h.now), expected);
    SQLite::Transaction t(h.db);
    for (const auto& id : expected) ASSERT_TRUE(h.sm.expireMarket(id, h.now).isOk()) << id;
    t.commit();
  }
  // Every micro-unit is on an account, in an escrow or held by an open order or bid.
  void expectConserved() {
    Micros total = 0;
    SQLite::Statement a(h.db, "SELECT COALESCE(SUM(balance), 0) FROM accounts");
    a.executeStep();
    total += a.getColumn(0).getInt64();
    SQLite::Statement e(h.db, "SELECT record FROM escrows");
    while (e.executeStep())
      total += escrowFromJson(nlohmann::json::parse(e.getColumn(0).getString()))->balance();
    total += embedded::MarketRules::held(h.db);
    EXPECT_EQ(total, h.sm.totalSupply());
  }
  void expectReplays() {
    embedded::LogReplayer replayer;
    for (const auto& r : readLog(h.db)) ASSERT_TRUE(replayer.add(r).isOk()) << "entry " << r.seq;
    EXPECT_EQ(replayer.stateRoot(), h.sm.stateRoot());
  }
};

TEST_F(MarketTest, AcceptingABidCreatesALeaseWhoseEscrowHoldsTheOrderDeposit) {
  const std::string o = createOrder(orderBody());
  EXPECT_EQ(h.balance(alice.address()), 950 * kTok);
  const std::string b1 = bidId(bid(prov, o, 1500));
  const std::string b2 = bidId(bid(prov2, o, 1200));
  EXPECT_EQ(h.balance(prov.address()), 10 * kTok - kBidDeposit);
  expectConserved();

  auto r = h.run(alice, TxKind::kLeaseCreate, LeaseCreateBody{b2});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  const std::string lease = r->receipt.result["lease"];
  EXPECT_EQ(r->receipt.result["escrow"], lease);
  EXPECT_EQ(order(o).state, OrderState::kMatched);
  EXPECT_EQ(order(o).lease, lease);
  EXPECT_EQ(getBid(b2).state, BidState::kWon);
  EXPECT_EQ(getBid(b1).state, BidState::kLost);
  // Both bid deposits came back; the order's deposit is now the escrow.
  EXPECT_EQ(h.balance(prov.address()), 10 * kTok);
  EXPECT_EQ(h.balance(prov2.address()), 10 * kTok);
  auto l = embedded::MarketRules::lease(h.db, lease);
  ASSERT_TRUE(l.isOk());
  EXPECT_EQ(l->provider, prov2.address());
  EXPECT_EQ(l->price.cpuSecond, 1200);
  std::vector<std::string> types;
  for (const auto& e : r->events) types.push_back(e.type);
  EXPECT_NE(std::find(types.begin(), types.end(), "lease.created"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "bid.lost"), types.end());

  // The lease's escrow meters at the bid's price, like any escrow.
  auto c = h.run(prov2, TxKind::kEscrowClaim, EscrowClaimBody{lease, Usage{10'000, 0, 0, 0}});
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->receipt.result["paid"], 12'000);
  EXPECT_EQ(h.balance(prov2.address()), 10 * kTok + 12'000);
  h.expectRejected([&] { return h.run(alice, TxKind::kLeaseCreate, LeaseCreateBody{b1}); },
                   Code::kFailedPrecondition, "matched");
  expectConserved();
  expectReplays();
}

TEST_F(MarketTest, BadOrdersAndBidsGetClearErrorsAndChangeNothing) {
  // Zero resources and a zero TTL are refused by the strict decoder, with the field path.
  nlohmann::json body = bodyToJson(orderBody());
  body["requirements"]["resources"][0]["cpu"] = 0;
  body["requirements"]["resources"][0]["memory"] = 0;
  auto zero = bodyFromJson(TxKind::kOrderCreate, body);
  ASSERT_FALSE(zero.isOk());
  EXPECT_NE(zero.status().message().find("tx.body.requirements.resources[0]: asks for zero"),
            std::string::npos)
      << zero.status().message();
  body = bodyToJson(orderBody());
  body["ttlMs"] = 0;
  auto ttl = bodyFromJson(TxKind::kOrderCreate, body);
  ASSERT_FALSE(ttl.isOk());
  EXPECT_NE(ttl.status().message().find("tx.body.ttlMs"), std::string::npos);

  h.expectRejected(
      [&] { return h.run(alice, TxKind::kOrderCreate, orderBody(kTok, 48 * 3600'000)); },
      Code::kInvalidArgument, "longer than this ledger's maximum");
  h.expectRejected([&] { return h.run(bob, TxKind::kOrderCreate, orderBody(11 * kTok)); },
                   Code::kFailedPrecondition, "overdraft");

  const std::string o = createOrder(orderBody());
  h.expectRejected([&] { return bid(prov, o, 2001); }, Code::kInvalidArgument,
                   "tx.body.price.cpuSecond");
  h.expectRejected([&] { return bid(bob, o, 1000); }, Code::kFailedPrecondition,
                   "not a registered provider");
  h.expectRejected([&] { return bid(prov, "ord_missing", 1000); }, Code::kNotFound,
                   "does not exist");
  ASSERT_TRUE(bid(prov, o, 1000).isOk());
  h.expectRejected([&] { return bid(prov, o, 900); }, Code::kAlreadyExists, "already has open bid");
  const std::string b2 = bidId(bid(prov2, o, 1000));
  h.expectRejected([&] { return h.run(bob, TxKind::kLeaseCreate, LeaseCreateBody{b2}); },
                   Code::kPermissionDenied, "cannot accept");
  h.expectRejected([&] { return h.run(prov, TxKind::kBidClose, BidCloseBody{b2}); },
                   Code::kPermissionDenied, "belongs to");
  h.expectRejected([&] { return h.run(bob, TxKind::kOrderClose, OrderCloseBody{o}); },
                   Code::kPermissionDenied, "belongs to");

  // An expired order takes no bids even before its expiry entry has run.
  h.now += 60'000;
  h.expectRejected([&] { return bid(prov2, o, 1000); }, Code::kFailedPrecondition, "expired");
  h.expectRejected([&] { return h.run(alice, TxKind::kLeaseCreate, LeaseCreateBody{b2}); },
                   Code::kFailedPrecondition, "expired");
  expectConserved();
}

TEST_F(MarketTest, RequiredAttributesAndAuditorSignaturesGateBids) {
  OrderCreateBody b = orderBody();
  b.requirements.attributes = {{"region", "eu"}};
  b.requirements.signedBy = {{auditor.address(), {{"tier", "datacenter"}}}};
  const std::string o = createOrder(b);
  h.expectRejected([&] { return bid(prov2, o, 1000); }, Code::kFailedPrecondition,
                   "region=eu (has us)");
  h.expectRejected([&] { return bid(prov, o, 1000); }, Code::kFailedPrecondition,
                   "has attested nothing");
  ASSERT_TRUE(
      h.run(auditor, TxKind::kAuditorAttest, AuditorAttestBody{prov.address(), {{"tier", "edge"}}})
          .isOk());
  h.expectRejected([&] { return bid(prov, o, 1000); }, Code::kFailedPrecondition,
                   "tier=datacenter (has edge)");
  ASSERT_TRUE(h.run(auditor, TxKind::kAuditorAttest,
                    AuditorAttestBody{prov.address(), {{"tier", "datacenter"}}})
                  .isOk());
  EXPECT_TRUE(bid(prov, o, 1000).isOk());
  // An attestation by someone else, or about oneself, does not count / is refused.
  h.expectRejected(
      [&] {
        return h.run(prov, TxKind::kAuditorAttest, AuditorAttestBody{prov.address(), {{"a", "b"}}});
      },
      Code::kInvalidArgument, "cannot attest about itself");
  auto as = embedded::MarketRules::attestations(h.db, prov.address());
  ASSERT_TRUE(as.isOk());
  ASSERT_EQ(as->size(), 1u);
  EXPECT_EQ((*as)[0].attributes.at("tier"), "datacenter");
  expectReplays();
}

TEST_F(MarketTest, OrdersAndBidsExpireAsLoggedEntriesThatRefund) {
  const std::string o = createOrder(orderBody(20 * kTok, 60'000));
  const std::string shortBid = bidId(bid(prov, o, 1000, 10'000));
  const std::string longBid = bidId(bid(prov2, o, 1000, 120'000));
  EXPECT_EQ(getBid(longBid).expiresAt, order(o).expiresAt);  // clamped to the order's life
  EXPECT_TRUE(h.sm.dueMarketExpiries(h.now + 9'999).empty());
  h.now += 10'000;
  expire({shortBid});
  EXPECT_EQ(getBid(shortBid).state, BidState::kExpired);
  EXPECT_EQ(h.balance(prov.address()), 10 * kTok);
  h.now += 50'000;
  // The order's expiry also expires its remaining bid; the bid is not listed separately.
  expire({o});
  EXPECT_EQ(order(o).state, OrderState::kExpired);
  EXPECT_EQ(getBid(longBid).state, BidState::kExpired);
  EXPECT_EQ(h.balance(alice.address()), 1000 * kTok);
  EXPECT_EQ(h.balance(prov2.address()), 10 * kTok);
  expectConserved();
  expectReplays();
}

TEST_F(MarketTest, ClosingAnOrderOrABidRefundsItsDeposit) {
  const std::string o = createOrder(orderBody());
  const std::string b = bidId(bid(prov, o, 1000));
  ASSERT_TRUE(h.run(prov, TxKind::kBidClose, BidCloseBody{b}).isOk());
  EXPECT_EQ(getBid(b).state, BidState::kClosed);
  EXPECT_EQ(h.balance(prov.address()), 10 * kTok);
  // After closing its bid a provider may bid again.
  const std::string b2 = bidId(bid(prov, o, 900));
  auto r = h.run(alice, TxKind::kOrderClose, OrderCloseBody{o});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(order(o).state, OrderState::kClosed);
  EXPECT_EQ(getBid(b2).state, BidState::kClosed);
  EXPECT_EQ(h.balance(alice.address()), 1000 * kTok);
  EXPECT_EQ(h.balance(prov.address()), 10 * kTok);
  h.expectRejected([&] { return h.run(alice, TxKind::kOrderClose, OrderCloseBody{o}); },
                   Code::kFailedPrecondition, "cannot be closed");
  expectConserved();
  expectReplays();
}

TEST_F(MarketTest, StoragePriceIsCappedByTheOrderAndCarriedIntoTheLease) {
  OrderCreateBody b = orderBody();
  b.requirements.resources[0].storage = 4ll << 30;
  b.maxPrice.storageGibHour = 500;
  const std::string o = createOrder(b);
  EXPECT_EQ(order(o).maxPrice.storageGibHour, 500);
  h.expectRejected(
      [&] {
        return h.run(prov, TxKind::kBidCreate,
                     BidCreateBody{o, Prices{1000, 1, 1, 1, 501}, 30'000});
      },
      Code::kInvalidArgument, "storageGibHour 0.000501 is above the order's maximum 0.0005");
  const std::string won =
      bidId(h.run(prov, TxKind::kBidCreate, BidCreateBody{o, Prices{1000, 1, 1, 1, 500}, 30'000}));
  EXPECT_EQ(getBid(won).price.storageGibHour, 500);
  auto lease = h.run(alice, TxKind::kLeaseCreate, LeaseCreateBody{won});
  ASSERT_TRUE(lease.isOk()) << lease.status().toString();
  // The escrow's terms are the bid's price: 1 GiB-hour of disk costs 500.
  const std::string escrow = lease->receipt.result["escrow"].get<std::string>();
  auto claim =
      h.run(prov, TxKind::kEscrowClaim, EscrowClaimBody{escrow, Usage{0, 0, 0, 0, 1024 * 3600}});
  ASSERT_TRUE(claim.isOk()) << claim.status().toString();
  EXPECT_EQ(claim->receipt.result["paid"], 500);
  // Without a storage cap, any storage price is accepted.
  EXPECT_EQ(priceOverCaps(Prices{0, 0, 0, 0, INT64_MAX}, PriceCaps{}), "");
  EXPECT_EQ(priceCapsFromJson(toJson(b.maxPrice), "m").value(), b.maxPrice);
  EXPECT_FALSE(toJson(PriceCaps{}).contains("storageGibHour"));
  expectConserved();
  expectReplays();
}

TEST_F(MarketTest, TransactionsRoundTripThroughTheWireForm) {
  OrderCreateBody b = orderBody();
  b.requirements.signedBy = {{auditor.address(), {{"tier", "datacenter"}}}};
  b.maxPrice.requests1k = 7;
  b.maxPrice.storageGibHour = 9;
  SignedTx s = h.sign(alice, TxKind::kOrderCreate, b);
  auto back = decodeSignedTx(toJson(s));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(back->hash, s.hash);
  const auto& d = std::get<OrderCreateBody>(back->tx.body);
  EXPECT_EQ(d.requirements, b.requirements);
  EXPECT_EQ(d.maxPrice, b.maxPrice);
  EXPECT_TRUE(verifySignature(*back).isOk());
}

}  // namespace
}  // namespace mercato::ledger::testing
