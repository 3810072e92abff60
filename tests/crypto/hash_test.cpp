#include "crypto/hash.hpp"

#include <gtest/gtest.h>

namespace mercato::crypto {
namespace {

TEST(HashTest, KnownBlake2b256Vector) {
  // BLAKE2b-256("") from the BLAKE2 reference implementation.
  EXPECT_EQ(hashHex(blake2b256("")),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(hashHex(blake2b256("abc")),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST(HashTest, HasherMatchesOneShot) {
  EXPECT_EQ(Hasher().update("ab").update("c").finish(), blake2b256("abc"));
  Hash256 inner = blake2b256("x");
  std::string joined(reinterpret_cast<const char*>(inner.data()), inner.size());
  EXPECT_EQ(Hasher().update(inner).finish(), blake2b256(joined));
}

TEST(HashTest, FieldsAreLengthPrefixed) {
  EXPECT_NE(Hasher().field("ab").field("c").finish(), Hasher().field("a").field("bc").finish());
  std::string expected(
      "\0\0\0\0\0\0\0\x02"
      "ab",
      10);
  EXPECT_EQ(Hasher().field("ab").finish(), blake2b256(expected));
}

TEST(HashTest, U64IsBigEndian) {
  std::string expected("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  EXPECT_EQ(Hasher().u64(0x0102030405060708ull).finish(), blake2b256(expected));
}

}  // namespace
}  // namespace mercato::crypto
