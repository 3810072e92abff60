#include "common/units.hpp"

#include <gtest/gtest.h>

namespace mercato {
namespace {

TEST(Units, ParsesCpu) {
  EXPECT_EQ(parseCpu("500m").value(), 500);
  EXPECT_EQ(parseCpu("2").value(), 2000);
  EXPECT_EQ(parseCpu("0.25").value(), 250);
  EXPECT_EQ(parseCpu("1.5").value(), 1500);
  EXPECT_FALSE(parseCpu("0.0001").isOk());
  EXPECT_FALSE(parseCpu("-1").isOk());
  EXPECT_FALSE(parseCpu("2 cores").isOk());
  EXPECT_FALSE(parseCpu("").isOk());
  EXPECT_NE(parseCpu("1.5m").status().message().find("finer than one millicore"),
            std::string::npos);
}

TEST(Units, ParsesBytes) {
  EXPECT_EQ(parseBytes("512Mi").value(), 512ll << 20);
  EXPECT_EQ(parseBytes("2Gi").value(), 2ll << 30);
  EXPECT_EQ(parseBytes("1G").value(), 1'000'000'000);
  EXPECT_EQ(parseBytes("1.5Gi").value(), 1610612736);
  EXPECT_EQ(parseBytes("100").value(), 100);
  EXPECT_EQ(parseBytes("4k").value(), 4000);
  EXPECT_FALSE(parseBytes("1.5").isOk());
  EXPECT_FALSE(parseBytes("12Zi").isOk());
  EXPECT_FALSE(parseBytes("-5Mi").isOk());
  EXPECT_FALSE(parseBytes("99999Ei").isOk());
}

TEST(Units, FormatsRoundTrip) {
  EXPECT_EQ(formatCpu(500), "500m");
  EXPECT_EQ(formatCpu(2000), "2");
  EXPECT_EQ(formatBytes(512ll << 20), "512Mi");
  EXPECT_EQ(formatBytes(1000), "1000");
  EXPECT_EQ(formatBytes(0), "0");
  for (int64_t b : {int64_t{1} << 30, int64_t{3} << 20, int64_t{12345}})
    EXPECT_EQ(parseBytes(formatBytes(b)).value(), b);
}

}  // namespace
}  // namespace mercato
