// Mercato-Sig request signatures and gateway macaroons (publisher/gateway_auth.hpp).
#include "publisher/gateway_auth.hpp"

#include <gtest/gtest.h>

#include <array>

#include "crypto/keys.hpp"

namespace mercato::publisher {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

class GatewayAuthTest : public ::testing::Test {
 protected:
  void SetUp() override { crypto::initCrypto(); }
  crypto::Identity alice_ = crypto::Identity::generate();
  crypto::Identity mallory_ = crypto::Identity::generate();
  std::array<uint8_t, 32> secret_{1, 2, 3, 4, 5, 6, 7, 8};
};

TEST_F(GatewayAuthTest, SignedRequestVerifiesAndNamesTheSigner) {
  std::string h = signRequest(alice_, "POST", "/gateway/v1/deployments/d1/exec", "{\"a\":1}", kNow);
  EXPECT_TRUE(h.starts_with("Mercato-Sig key=" + alice_.publicKey().hex() + ",ts="));
  auto k = verifyRequestSignature(h, "POST", "/gateway/v1/deployments/d1/exec", "{\"a\":1}",
                                  kNow + 1000);
  ASSERT_TRUE(k.isOk()) << k.status().toString();
  EXPECT_EQ(*k, alice_.publicKey());
}

TEST_F(GatewayAuthTest, TamperedBodyMethodOrTargetFails) {
  std::string h = signRequest(alice_, "POST", "/gateway/v1/deployments/d1/exec", "{\"a\":1}", kNow);
  for (auto [m, t, b] : {std::tuple{"POST", "/gateway/v1/deployments/d1/exec", "{\"a\":2}"},
                         std::tuple{"GET", "/gateway/v1/deployments/d1/exec", "{\"a\":1}"},
                         std::tuple{"POST", "/gateway/v1/deployments/d2/exec", "{\"a\":1}"}}) {
    auto k = verifyRequestSignature(h, m, t, b, kNow);
    ASSERT_FALSE(k.isOk());
    EXPECT_EQ(k.status().code(), Code::kUnauthenticated);
    EXPECT_NE(k.status().message().find("does not verify"), std::string::npos);
  }
}

TEST_F(GatewayAuthTest, SignatureByAnotherKeyFails) {
  // Mallory signs but claims Alice's key.
  std::string h = signRequest(mallory_, "GET", "/gateway/v1/deployments", "", kNow);
  std::string forged = "Mercato-Sig key=" + alice_.publicKey().hex() + h.substr(h.find(",ts="));
  auto k = verifyRequestSignature(forged, "GET", "/gateway/v1/deployments", "", kNow);
  ASSERT_FALSE(k.isOk());
  EXPECT_EQ(k.status().code(), Code::kUnauthenticated);
}

TEST_F(GatewayAuthTest, StaleOrFutureTimestampFails) {
  std::string h = signRequest(alice_, "GET", "/gateway/v1/deployments", "", kNow);
  auto stale = verifyRequestSignature(h, "GET", "/gateway/v1/deployments", "", kNow + 300'001);
  ASSERT_FALSE(stale.isOk());
  EXPECT_EQ(stale.status().code(), Code::kUnauthenticated);
  EXPECT_NE(stale.status().message().find("clock"), std::string::npos);
  auto future = verifyRequestSignature(h, "GET", "/gateway/v1/deployments", "", kNow - 300'001);
  EXPECT_FALSE(future.isOk());
  EXPECT_TRUE(verifyRequestSignature(h, "GET", "/gateway/v1/deployments", "", kNow + 300'000));
  // A custom skew.
  EXPECT_FALSE(verifyRequestSignature(h, "GET", "/gateway/v1/deployments", "", kNow + 2000, 1000));
}

TEST_F(GatewayAuthTest, MalformedHeadersSayWhatIsWrong) {
  const std::string key = alice_.publicKey().hex();
  const std::string sig(128, 'a');
  struct Case {
    std::string header, mentions;
  };
  for (const auto& c : std::vector<Case>{
           {"", "expected 'Mercato-Sig"},
           {"Bearer abc", "expected 'Mercato-Sig"},
           {"Mercato-Sig key=" + key + ",ts=1", "missing sig"},
           {"Mercato-Sig ts=1,sig=" + sig, "missing key"},
           {"Mercato-Sig key=" + key + ",sig=" + sig, "missing ts"},
           {"Mercato-Sig key=zz,ts=1,sig=" + sig, "key:"},
           {"Mercato-Sig key=" + key + ",ts=abc,sig=" + sig, "ts:"},
           {"Mercato-Sig key=" + key + ",ts=1,sig=00", "sig:"},
           {"Mercato-Sig key=" + key + ",ts=1,ts=2,sig=" + sig, "duplicate"},
           {"Mercato-Sig key=" + key + ",ts=1,sig=" + sig + ",x=1", "unknown parameter"},
           {"Mercato-Sig garbage", "not name=value"},
       }) {
    auto k = verifyRequestSignature(c.header, "GET", "/", "", 1);
    ASSERT_FALSE(k.isOk()) << c.header;
    EXPECT_EQ(k.status().code(), Code::kUnauthenticated) << c.header;
    EXPECT_NE(k.status().message().find(c.mentions), std::string::npos)
        << c.header << " -> " << k.status().message();
  }
}

TEST_F(GatewayAuthTest, MacaroonGrantsItsOps) {
  std::string t = mintMacaroon(secret_, "dep1", kNow + 60'000, {"read", "exec"});
  EXPECT_TRUE(verifyMacaroon(secret_, t, "dep1", "read", kNow).isOk());
  EXPECT_TRUE(verifyMacaroon(secret_, t, "dep1", "exec", kNow).isOk());
  // Tokens are URL-safe (they travel in headers and query strings).
  EXPECT_EQ(t.find_first_of("+/= "), std::string::npos);
}

TEST_F(GatewayAuthTest, MacaroonRefusesExpiredOtherDeploymentAndOtherOp) {
  std::string t = mintMacaroon(secret_, "dep1", kNow + 60'000, {"read"});
  Status expired = verifyMacaroon(secret_, t, "dep1", "read", kNow + 60'000);
  EXPECT_EQ(expired.code(), Code::kPermissionDenied);
  EXPECT_NE(expired.message().find("expired"), std::string::npos);
  Status other = verifyMacaroon(secret_, t, "dep2", "read", kNow);
  EXPECT_EQ(other.code(), Code::kPermissionDenied);
  EXPECT_NE(other.message().find("dep1"), std::string::npos);
  Status exec = verifyMacaroon(secret_, t, "dep1", "exec", kNow);
  EXPECT_EQ(exec.code(), Code::kPermissionDenied);
  EXPECT_NE(exec.message().find("exec"), std::string::npos);
}

TEST_F(GatewayAuthTest, TamperedOrForeignMacaroonIsRefused) {
  std::string t = mintMacaroon(secret_, "dep1", kNow + 60'000, {"read"});
  std::array<uint8_t, 32> other{9};
  EXPECT_EQ(verifyMacaroon(other, t, "dep1", "read", kNow).code(), Code::kUnauthenticated);
  // Flip one character anywhere: either it no longer decodes or the chain breaks.
  for (size_t i = 0; i < t.size(); i += 7) {
    std::string bad = t;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    Status s = verifyMacaroon(secret_, bad, "dep1", "read", kNow);
    EXPECT_FALSE(s.isOk()) << "position " << i;
  }
  EXPECT_EQ(verifyMacaroon(secret_, "!!!", "dep1", "read", kNow).code(), Code::kUnauthenticated);
  EXPECT_EQ(verifyMacaroon(secret_, "", "dep1", "read", kNow).code(), Code::kUnauthenticated);
}

TEST_F(GatewayAuthTest, AttenuationOnlyRestricts) {
  std::string t = mintMacaroon(secret_, "dep1", kNow + 60'000, {"read", "exec"});
  auto readOnly = attenuateMacaroon(t, "ops = read");
  ASSERT_TRUE(readOnly.isOk());
  EXPECT_TRUE(verifyMacaroon(secret_, *readOnly, "dep1", "read", kNow).isOk());
  EXPECT_EQ(verifyMacaroon(secret_, *readOnly, "dep1", "exec", kNow).code(),
            Code::kPermissionDenied);
  auto shorter = attenuateMacaroon(t, "expires = " + std::to_string(kNow + 10));
  ASSERT_TRUE(shorter.isOk());
  EXPECT_EQ(verifyMacaroon(secret_, *shorter, "dep1", "read", kNow + 20).code(),
            Code::kPermissionDenied);
  auto unknown = attenuateMacaroon(t, "ip = 10.0.0.1");
  ASSERT_TRUE(unknown.isOk());
  EXPECT_EQ(verifyMacaroon(secret_, *unknown, "dep1", "read", kNow).code(),
            Code::kPermissionDenied);
  EXPECT_FALSE(attenuateMacaroon(t, "no equals sign").isOk());
}

}  // namespace
}  // namespace mercato::publisher
