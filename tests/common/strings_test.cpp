#include "common/strings.hpp"

#include <gtest/gtest.h>

namespace mercato {
namespace {

TEST(Strings, HexRoundTrip) {
  std::string raw("\x00\x01\xab\xff", 4);
  EXPECT_EQ(toHex(raw), "0001abff");
  auto back = fromHex("0001ABff");
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(std::string(back->begin(), back->end()), raw);
  EXPECT_FALSE(fromHex("abc").isOk());
  EXPECT_NE(fromHex("zz").status().message().find("offset 0"), std::string::npos);
}

TEST(Strings, SplitTrim) {
  EXPECT_EQ(split("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(trimSpace("  x y\n"), "x y");
  EXPECT_TRUE(startsWith("mer1abc", "mer1"));
  EXPECT_FALSE(startsWith("me", "mer1"));
}

}  // namespace
}  // namespace mercato
