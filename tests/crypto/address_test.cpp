#include "crypto/address.hpp"

#include <gtest/gtest.h>

namespace mercato::crypto {
namespace {

TEST(Base32Test, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "my"},
      {"fo", "mzxq"},
      {"foo", "mzxw6"},
      {"foob", "mzxw6yq"},
      {"fooba", "mzxw6ytb"},
      {"foobar", "mzxw6ytboi"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base32Encode(plain), encoded) << plain;
    auto decoded = base32Decode(encoded);
    ASSERT_TRUE(decoded.isOk()) << encoded << ": " << decoded.status().toString();
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base32Test, RejectsMalformed) {
  EXPECT_FALSE(base32Decode("MZXQ").isOk());      // uppercase
  EXPECT_FALSE(base32Decode("mzxq====").isOk());  // padding
  EXPECT_FALSE(base32Decode("mz1q").isOk());      // not in the alphabet
  EXPECT_FALSE(base32Decode("m").isOk());         // impossible length
  EXPECT_FALSE(base32Decode("mz").isOk());        // non-zero padding bits ("my" is canonical)
}

TEST(Base32Test, BinaryRoundtrip) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= bytes.size(); n += 7) {
    auto d = base32Decode(base32Encode(bytes.substr(0, n)));
    ASSERT_TRUE(d.isOk());
    EXPECT_EQ(*d, bytes.substr(0, n));
  }
}

TEST(AddressTest, RoundtripAndShape) {
  for (int i = 0; i < 20; ++i) {
    Identity id = Identity::generate();
    std::string addr = id.address();
    EXPECT_EQ(addr, addressFromPublicKey(id.publicKey()));
    EXPECT_EQ(addr.substr(0, 4), "mer1");
    EXPECT_EQ(addr.size(), 4u + 39u);
    EXPECT_TRUE(validateAddress(addr).isOk()) << validateAddress(addr).toString();
  }
}

TEST(AddressTest, ChecksumCatchesEverySingleCharacterChange) {
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  for (int sample = 0; sample < 5; ++sample) {
    std::string addr = Identity::generate().address();
    for (size_t pos = 4; pos < addr.size(); ++pos) {
      for (char c : alphabet) {
        if (c == addr[pos]) continue;
        std::string typo = addr;
        typo[pos] = c;
        Status st = validateAddress(typo);
        EXPECT_FALSE(st.isOk()) << typo;
        EXPECT_EQ(st.code(), Code::kInvalidArgument);
      }
    }
  }
}

TEST(AddressTest, ErrorsNameTheFailingPart) {
  std::string addr = Identity::generate().address();
  Status prefix = validateAddress("mex1" + addr.substr(4));
  EXPECT_NE(prefix.message().find("start with"), std::string::npos) << prefix.toString();

  std::string upper = addr;
  upper[10] =
      static_cast<char>(std::toupper(upper[10]) == upper[10] ? '!' : std::toupper(upper[10]));
  Status encoding = validateAddress(upper);
  EXPECT_NE(encoding.message().find("encoding"), std::string::npos) << encoding.toString();

  Status length = validateAddress(addr.substr(0, addr.size() - 1));
  EXPECT_NE(length.message().find("length"), std::string::npos) << length.toString();
  Status longer = validateAddress(addr + "a");
  EXPECT_NE(longer.message().find("length"), std::string::npos) << longer.toString();

  std::string typo = addr;
  typo[12] = typo[12] == 'a' ? 'b' : 'a';
  Status checksum = validateAddress(typo);
  EXPECT_NE(checksum.message().find("checksum"), std::string::npos) << checksum.toString();

  EXPECT_FALSE(validateAddress("").isOk());
  EXPECT_FALSE(validateAddress("mer1").isOk());
}

}  // namespace
}  // namespace mercato::crypto
