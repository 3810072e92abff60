// json_access: typed reads of untrusted JSON name the field and the expected type and never
// throw.
#include "common/json_access.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mercato {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(JsonAccessTest, WrongTypesNameTheFieldAndTheExpectedType) {
  const json j = json::parse(R"({"ttlSeconds":"x","ops":[1],"n":1.5,"big":18446744073709551615,
                                 "b":"yes","o":[],"s":3})");
  auto ttl = getIntOr(j, "macaroons", "ttlSeconds", 3600);
  ASSERT_FALSE(ttl.isOk());
  EXPECT_EQ(ttl.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ttl.status().message(), "macaroons: ttlSeconds: expected an integer, got string");
  auto ops = getStringArrayOr(j, "macaroons", "ops", {});
  ASSERT_FALSE(ops.isOk());
  EXPECT_EQ(ops.status().message(), "macaroons: ops[0]: expected a string, got integer");
  EXPECT_THAT(getInt(j, "w", "n").status().message(), HasSubstr("got number with a fraction"));
  EXPECT_THAT(getInt(j, "w", "big").status().message(), HasSubstr("out of range"));
  EXPECT_THAT(getBool(j, "w", "b").status().message(), HasSubstr("w: b: expected a boolean"));
  EXPECT_THAT(getObject(j, "w", "o").status().message(), HasSubstr("expected an object"));
  EXPECT_THAT(getString(j, "w", "s").status().message(), HasSubstr("got integer"));
  EXPECT_THAT(getString(j, "w", "absent").status().message(), HasSubstr("w: absent: missing"));
  EXPECT_THAT(getInt(json::array(), "w", "n").status().message(),
              HasSubstr("w: expected a JSON object, got array"));
}

TEST(JsonAccessTest, OptionalFieldsTakeTheirFallbackWhenAbsentOrNull) {
  const json j = json::parse(R"({"a":null,"n":5,"s":"v","l":["x"],"t":true})");
  EXPECT_EQ(getIntOr(j, "w", "a", 9).value(), 9);
  EXPECT_EQ(getIntOr(j, "w", "n", 9).value(), 5);
  EXPECT_EQ(getStringOr(j, "w", "s", "d").value(), "v");
  EXPECT_EQ(getStringArrayOr(j, "w", "l", {}).value(), std::vector<std::string>{"x"});
  EXPECT_TRUE(getBoolOr(j, "w", "t", false).value());
  EXPECT_EQ(getObjectOr(j, "w", "a").value(), nullptr);
  EXPECT_THAT(getIntInRange(j, "w", "n", 6, 10, 7).status().message(),
              HasSubstr("w: n: expected an integer in 6..10, got 5"));
}

TEST(JsonAccessTest, IntegerParametersAreWholeAndInRange) {
  EXPECT_EQ(parseIntParam("42", "events", "after", 0, 100).value(), 42);
  for (const char* bad : {"", "x", "4x", " 4", "-1", "101", "99999999999999999999"}) {
    auto r = parseIntParam(bad, "events", "after", 0, 100);
    ASSERT_FALSE(r.isOk()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("events: after: expected an integer in 0..100"));
  }
  EXPECT_EQ(parseIntParamOr(std::nullopt, "w", "n", 0, 5, 3).value(), 3);
}

}  // namespace
}  // namespace mercato
