#include "common/money.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace mercato {
namespace {

TEST(Money, ParsesDecimals) {
  EXPECT_EQ(parseAmount("12.5").value(), 12'500'000);
  EXPECT_EQ(parseAmount("7").value(), 7'000'000);
  EXPECT_EQ(parseAmount("0.000001").value(), 1);
  EXPECT_EQ(parseAmount(" 3.25 MER ").value(), 3'250'000);
  EXPECT_EQ(parseAmount(".5").value(), 500'000);
  EXPECT_EQ(parseAmount("5.").value(), 5'000'000);
}

TEST(Money, RejectsBadAmountsWithReasons) {
  struct Case {
    const char* in;
    const char* why;
  } cases[] = {{"", "empty"},
               {"-1", "negative"},
               {"1.0000001", "more than 6 decimals"},
               {"1.2.3", "more than one"},
               {"12abc", "unexpected character"},
               {".", "no digits"},
               {"99999999999999999999", "too large"}};
  for (const auto& c : cases) {
    auto r = parseAmount(c.in);
    ASSERT_FALSE(r.isOk()) << c.in;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.why), std::string::npos) << r.status().message();
  }
}

TEST(Money, FormatsShortestExactDecimal) {
  EXPECT_EQ(formatAmount(12'500'000), "12.5");
  EXPECT_EQ(formatAmount(0), "0");
  EXPECT_EQ(formatAmount(1), "0.000001");
  EXPECT_EQ(formatAmount(-3), "-0.000003");
  EXPECT_EQ(formatAmount(std::numeric_limits<int64_t>::min()), "-9223372036854.775808");
  for (Micros m : {Micros{1}, Micros{999'999}, Micros{1'000'001}, Micros{123'456'789'012}})
    EXPECT_EQ(parseAmount(formatAmount(m)).value(), m);
}

TEST(Money, CheckedArithmetic) {
  EXPECT_EQ(checkedAdd(1, 2).value(), 3);
  EXPECT_FALSE(checkedAdd(std::numeric_limits<Micros>::max(), 1).isOk());
  EXPECT_FALSE(checkedSub(std::numeric_limits<Micros>::min(), 1).isOk());
}

}  // namespace
}  // namespace mercato
