#include "crypto/keys.hpp"

#include <gtest/gtest.h>

#include <array>

namespace mercato::crypto {
namespace {

std::array<uint8_t, 32> seedOf(uint8_t fill) {
  std::array<uint8_t, 32> s{};
  s.fill(fill);
  return s;
}

TEST(IdentityTest, SignAndVerify) {
  Identity id = Identity::generate();
  Signature sig = id.sign("hello");
  EXPECT_TRUE(verify(id.publicKey(), "hello", sig));
  EXPECT_FALSE(verify(id.publicKey(), "hellp", sig));
  Signature bad = sig;
  bad.bytes[10] ^= 1;
  EXPECT_FALSE(verify(id.publicKey(), "hello", bad));
}

TEST(IdentityTest, WrongKeyFails) {
  Identity a = Identity::generate();
  Identity b = Identity::generate();
  ASSERT_NE(a.publicKey(), b.publicKey());
  EXPECT_FALSE(verify(b.publicKey(), "msg", a.sign("msg")));
}

TEST(IdentityTest, FromSeedIsDeterministic) {
  auto seed = seedOf(7);
  auto a = Identity::fromSeed(seed);
  auto b = Identity::fromSeed(seed);
  ASSERT_TRUE(a.isOk());
  ASSERT_TRUE(b.isOk());
  EXPECT_EQ(a->publicKey(), b->publicKey());
  EXPECT_EQ(a->sign("x"), b->sign("x"));  // Ed25519 signatures are deterministic
  EXPECT_TRUE(std::equal(a->seed().begin(), a->seed().end(), seed.begin()));
  auto c = Identity::fromSeed(seedOf(8));
  ASSERT_TRUE(c.isOk());
  EXPECT_NE(a->publicKey(), c->publicKey());
}

TEST(IdentityTest, FromSeedRejectsWrongLength) {
  std::array<uint8_t, 31> shortSeed{};
  auto r = Identity::fromSeed(shortSeed);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST(IdentityTest, MoveAndClone) {
  auto seed = seedOf(3);
  Identity a = std::move(Identity::fromSeed(seed)).value();
  PublicKey pk = a.publicKey();
  Identity b = a.clone();
  EXPECT_EQ(b.publicKey(), pk);
  Identity c = std::move(a);
  EXPECT_EQ(c.publicKey(), pk);
  EXPECT_TRUE(verify(pk, "m", c.sign("m")));
  // The moved-from identity no longer holds the secret.
  for (uint8_t byte : a.secretKey()) EXPECT_EQ(byte, 0);  // NOLINT(bugprone-use-after-move)
  Identity d = Identity::generate();
  d = std::move(b);
  EXPECT_EQ(d.publicKey(), pk);
}

TEST(KeyTypesTest, HexRoundtrip) {
  Identity id = Identity::generate();
  auto pk = PublicKey::fromHex(id.publicKey().hex());
  ASSERT_TRUE(pk.isOk());
  EXPECT_EQ(*pk, id.publicKey());
  Signature sig = id.sign("z");
  auto sig2 = Signature::fromHex(sig.hex());
  ASSERT_TRUE(sig2.isOk());
  EXPECT_EQ(*sig2, sig);
  EXPECT_FALSE(PublicKey::fromHex("abcd").isOk());
  EXPECT_FALSE(PublicKey::fromHex(std::string(64, 'g')).isOk());
  EXPECT_FALSE(Signature::fromHex(id.publicKey().hex()).isOk());
}

}  // namespace
}  // namespace mercato::crypto
