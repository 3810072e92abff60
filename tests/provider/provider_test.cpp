// The provider role in one process, on real components: the embedded ledger, the runc runtime
// running the sample image from a loopback docker-registry, the facade and the gateway. It walks
// intake -> receipt -> request through the facade from zero -> idle scale-to-zero -> claims ->
// exhaustion (402) -> top-up (restored) -> exhaustion again -> removal after the grace period,
// and the attack list: each bad bundle is refused, nothing is deployed and nothing is charged.
// The facade and ledger run on a FakeClock so idle timeouts and grace periods are exact.
// Needs root, runc and CNI: ctest label `runc`.
#include "provider_fixture.hpp"
#include "publisher/gateway_auth.hpp"

namespace mercato::provider {
namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using testing_support::kManifest;
using testing_support::ProviderTest;

TEST_F(ProviderTest, PublishServeScaleClaimExhaustTopUpAndRemove) {
  std::string esc = openEscrow(*publisher_, kMicrosPerToken / 10);  // 0.1 MER
  auto receiptJson = provider_->acceptBundle(seal(esc, *publisher_, node_->publicKey(), app()));
  ASSERT_TRUE(receiptJson.isOk()) << receiptJson.status().message();
  auto receipt = publisher::receiptFromJson(*receiptJson);
  ASSERT_TRUE(receipt.isOk());
  EXPECT_TRUE(publisher::verifyReceipt(*receipt, node_->publicKey()).isOk());
  EXPECT_EQ(receipt->escrowId, esc);
  EXPECT_EQ(receipt->publisher, publisher_->address());
  const std::string dep = receipt->deploymentId;
  const std::string path = "/d/" + dep + "/";
  EXPECT_EQ(runningInstances(dep), 0u) << "min is 0: nothing runs before the first request";

  // From zero: the first request waits for an instance.
  auto first = get(path);
  ASSERT_TRUE(first.isOk()) << first.status().message();
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_THAT(first->body, HasSubstr("hello from"));
  EXPECT_EQ(runningInstances(dep), 1u);

  // Idle: back to zero after idleTimeout on the facade's clock. (The facade notes the request's
  // end just after the client has the response, so the clock may have to move once more.)
  for (int round = 0; round < 5 && runningInstances(dep) > 0; ++round) {
    clock_.advance(6s);
    for (int i = 0; i < 80 && runningInstances(dep) > 0; ++i) std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(runningInstances(dep), 0u);

  // A claim pays for the request (0.01) and the CPU used.
  ASSERT_TRUE(provider_->settleOnce().isOk());
  auto e = escrow(esc);
  EXPECT_GE(e.usage.requests, 1);
  EXPECT_GT(e.claimed, 0);
  EXPECT_LE(e.claimed, e.deposited);
  // Settling again with no new usage claims nothing more (cumulative, never above use).
  Micros claimedBefore = e.claimed;
  ASSERT_TRUE(provider_->settleOnce().isOk());
  EXPECT_EQ(escrow(esc).claimed, claimedBefore);

  // Spend the rest: 0.1 MER buys fewer than 10 requests.
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(get(path).isOk());
  ASSERT_TRUE(provider_->settleOnce().isOk());
  EXPECT_EQ(escrow(esc).state, ledger::EscrowState::kExhausted);
  auto unpaid = get(path);
  ASSERT_TRUE(unpaid.isOk());
  EXPECT_EQ(unpaid->status, 402);
  EXPECT_THAT(unpaid->body, HasSubstr("exhausted"));

  // A top-up within the grace period restores service.
  ASSERT_TRUE(send(*publisher_, ledger::TxKind::kEscrowDeposit,
                   ledger::EscrowDepositBody{esc, kMicrosPerToken})
                  .isOk());
  ASSERT_TRUE(provider_->settleOnce().isOk());
  auto back = get(path);
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(back->status, 200) << back->body;

  // Exhausted again and not topped up: removed after the grace period.
  auto v = provider_->view(dep);
  ASSERT_TRUE(v.isOk());
  for (int round = 0; round < 20 && escrow(esc).state == ledger::EscrowState::kOpen; ++round) {
    for (int i = 0; i < 20; ++i) (void)get(path);
    ASSERT_TRUE(provider_->settleOnce().isOk());
  }
  ASSERT_EQ(escrow(esc).state, ledger::EscrowState::kExhausted);
  EXPECT_EQ(get(path)->status, 402);
  clock_.advance(61s);
  ASSERT_TRUE(provider_->settleOnce().isOk());
  EXPECT_EQ(get(path)->status, 404);
  EXPECT_EQ(runtime_->status(dep).status().code(), Code::kNotFound);
  auto removed = provider_->view(dep);
  ASSERT_TRUE(removed.isOk());
  EXPECT_EQ(removed->record.state, "removed");
  auto final = escrow(esc);
  EXPECT_LE(final.claimed, final.deposited);
}

TEST_F(ProviderTest, AttacksAreRefusedAndNothingIsDeployedOrCharged) {
  auto expectRefused = [&](const std::string& what, Result<nlohmann::json> r, Code code,
                           const std::string& fragment) {
    ASSERT_FALSE(r.isOk()) << what << " was accepted";
    EXPECT_EQ(r.status().code(), code) << what << ": " << r.status().message();
    EXPECT_THAT(r.status().message(), HasSubstr(fragment)) << what;
  };
  std::string esc = openEscrow(*publisher_, kMicrosPerToken);

  // Sealed to another provider.
  auto other = crypto::Identity::generate();
  expectRefused("sealed to another provider",
                provider_->acceptBundle(seal(esc, *publisher_, other.publicKey(), app())),
                Code::kPermissionDenied, "");
  // Modified ciphertext.
  std::string good = seal(esc, *publisher_, node_->publicKey(), app());
  std::string tampered = good;
  tampered[tampered.size() / 2] ^= 0x01;
  expectRefused("modified ciphertext", provider_->acceptBundle(tampered), Code::kUnauthenticated,
                "");
  // Someone else's escrow: a stranger seals a bundle naming the publisher's escrow.
  auto stranger = crypto::Identity::generate();
  expectRefused("someone else's escrow",
                provider_->acceptBundle(seal(esc, stranger, node_->publicKey(), app())),
                Code::kPermissionDenied, "belongs to");
  // An escrow that doesn't exist.
  expectRefused("unknown escrow",
                provider_->acceptBundle(
                    seal("e0000000000000000000000000000000000000000000000000000000000000000",
                         *publisher_, node_->publicKey(), app())),
                Code::kFailedPrecondition, "does not exist");
  // A closed escrow.
  std::string closed = openEscrow(*publisher_, kMicrosPerToken);
  ASSERT_TRUE(
      send(*publisher_, ledger::TxKind::kEscrowClose, ledger::EscrowCloseBody{closed}).isOk());
  expectRefused("closed escrow",
                provider_->acceptBundle(seal(closed, *publisher_, node_->publicKey(), app())),
                Code::kFailedPrecondition, "not open");
  // An escrow for another provider.
  auto otherProvider = crypto::Identity::generate();
  mint(otherProvider.address(), kMicrosPerToken);
  ledger::ProviderBody pb;
  pb.nodeKey = otherProvider.publicKey().hex();
  pb.gatewayUrl = "https://127.0.0.1:1";
  pb.capacity = {1000, 1 << 30, 1 << 30};
  ASSERT_TRUE(send(otherProvider, ledger::TxKind::kProviderRegister, pb).isOk());
  std::string elsewhere = openEscrow(*publisher_, kMicrosPerToken, otherProvider.address());
  expectRefused("escrow paying another provider",
                provider_->acceptBundle(seal(elsewhere, *publisher_, node_->publicKey(), app())),
                Code::kPermissionDenied, "pays provider");
  // More than the provider's capacity (1000m): 3 × 500m at peak.
  std::string big = kManifest;
  big.replace(big.find("250m"), 4, "500m");
  big.replace(big.find("max: 2"), 6, "max: 3");
  expectRefused("over capacity",
                provider_->acceptBundle(seal(esc, *publisher_, node_->publicKey(), app(big))),
                Code::kResourceExhausted, "CPU at peak");

  // Nothing ran, nothing is routed, nothing was claimed.
  auto all = runtime_->list();
  ASSERT_TRUE(all.isOk());
  EXPECT_TRUE(all->empty());
  auto deps = provider_->views("");
  ASSERT_TRUE(deps.isOk());
  EXPECT_TRUE(deps->empty());
  ASSERT_TRUE(provider_->settleOnce().isOk());
  EXPECT_EQ(escrow(esc).claimed, 0);

  // The good bundle is accepted once; the same bytes again are a replay.
  ASSERT_TRUE(provider_->acceptBundle(good).isOk());
  auto replay = provider_->acceptBundle(good);
  ASSERT_FALSE(replay.isOk());
  EXPECT_THAT(replay.status().message(), testing::AnyOf(HasSubstr("already"), HasSubstr("nonce")));
}

TEST_F(ProviderTest, TermsMustMatchCurrentPrices) {
  // The registry lists other prices than the provider now charges (its provider.yaml changed
  // and the registration has not caught up): an escrow opened on those terms is refused.
  ledger::ProviderBody pb;
  pb.nodeKey = node_->publicKey().hex();
  pb.gatewayUrl = provider_->gatewayUrl();
  pb.capacity = {1000, int64_t{1} << 30, int64_t{10} << 30};
  pb.prices = {2000, 0, 0, 10'000'000};
  ASSERT_TRUE(send(*node_, ledger::TxKind::kProviderUpdate, pb).isOk());
  std::string esc = openEscrow(*publisher_, kMicrosPerToken);
  auto r = provider_->acceptBundle(seal(esc, *publisher_, node_->publicKey(), app()));
  ASSERT_FALSE(r.isOk());
  EXPECT_THAT(r.status().message(), HasSubstr("terms"));
}

TEST_F(ProviderTest, GatewayServesOnlyTheOwner) {
  std::string esc = openEscrow(*publisher_, kMicrosPerToken);
  auto owner =
      publisher::GatewayClient::create(provider_->gatewayUrl(), node_->publicKey(), *publisher_);
  ASSERT_TRUE(owner.isOk()) << owner.status().message();
  // The whole intake over HTTPS (pinned to the node key), receipt verified by the client.
  auto receipt =
      (*owner)->deploy(seal(esc, *publisher_, node_->publicKey(), app()), {esc, node_->address()});
  ASSERT_TRUE(receipt.isOk()) << receipt.status().message();
  const std::string dep = receipt->deploymentId;
  auto st = (*owner)->status(dep);
  ASSERT_TRUE(st.isOk()) << st.status().message();
  EXPECT_EQ((*st)["state"], "active");
  EXPECT_EQ((*st)["escrowId"], esc);
  auto listed = (*owner)->list();
  ASSERT_TRUE(listed.isOk());
  EXPECT_EQ(listed->size(), 1u);

  // Anyone else, properly signed, is refused: 403 on status, exec and logs; lists are empty.
  auto strangerId = crypto::Identity::generate();
  auto stranger =
      publisher::GatewayClient::create(provider_->gatewayUrl(), node_->publicKey(), strangerId);
  ASSERT_TRUE(stranger.isOk());
  EXPECT_EQ((*stranger)->status(dep).status().code(), Code::kPermissionDenied);
  EXPECT_EQ((*stranger)->exec(dep, "web", {"/bin/echo", "hi"}).status().code(),
            Code::kPermissionDenied);
  auto theirs = (*stranger)->list();
  ASSERT_TRUE(theirs.isOk());
  EXPECT_TRUE(theirs->empty());
  // And an unsigned request is 401.
  auto raw = net::HttpClient::create(provider_->gatewayUrl(), [&] {
    net::ClientOptions o;
    o.pinnedKey = node_->publicKey();
    return o;
  }());
  ASSERT_TRUE(raw.isOk());
  auto anon = (*raw)->request("GET", "/gateway/v1/deployments/" + dep);
  ASSERT_TRUE(anon.isOk());
  EXPECT_EQ(anon->status, 401);
}

// Issue 12, finding 1: {"ttlSeconds":"x"} or {"ops":[1]} on /macaroons threw on a gateway
// worker and std::terminate took the node down. Through the real gateway: 400 naming the field,
// and the gateway still answers afterwards.
TEST_F(ProviderTest, MalformedMacaroonBodiesAre400AndTheNodeKeepsServing) {
  std::string esc = openEscrow(*publisher_, kMicrosPerToken);
  auto owner =
      publisher::GatewayClient::create(provider_->gatewayUrl(), node_->publicKey(), *publisher_);
  ASSERT_TRUE(owner.isOk()) << owner.status().message();
  auto receipt =
      (*owner)->deploy(seal(esc, *publisher_, node_->publicKey(), app()), {esc, node_->address()});
  ASSERT_TRUE(receipt.isOk()) << receipt.status().message();
  const std::string dep = receipt->deploymentId;
  auto raw = net::HttpClient::create(provider_->gatewayUrl(), [&] {
    net::ClientOptions o;
    o.pinnedKey = node_->publicKey();
    return o;
  }());
  ASSERT_TRUE(raw.isOk());
  const std::string target = "/gateway/v1/deployments/" + dep + "/macaroons";
  for (const auto& [body, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({"ttlSeconds":"x"})", "macaroons: ttlSeconds: expected an integer, got string"},
           {R"({"ops":[1]})", "macaroons: ops[0]: expected a string, got integer"}}) {
    const std::string auth =
        publisher::signRequest(*publisher_, "POST", target, body, clock_.nowMillis());
    auto r = (*raw)->request("POST", target, body, {{"Authorization", auth}});
    ASSERT_TRUE(r.isOk()) << body << ": " << r.status().message();
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find(expected), std::string::npos) << r->body;
  }
  // Still serving: the owner's status call and a well-formed macaroon work.
  auto st = (*owner)->status(dep);
  ASSERT_TRUE(st.isOk()) << st.status().message();
  EXPECT_TRUE((*owner)->mintMacaroon(dep, 60, {"read"}).isOk());
}

}  // namespace
}  // namespace mercato::provider
