// The gateway's request parsers (issue 12, finding 1): {"ttlSeconds":"x"} and {"ops":[1]} on
// POST .../macaroons threw nlohmann's type_error on a gateway worker and terminated the node;
// they are now 400s naming the field.
#include "provider/gateway_requests.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mercato::provider {
namespace {

using ::testing::HasSubstr;

TEST(GatewayRequestsTest, MacaroonBodiesOfTheWrongTypeAreRefusedNamingTheField) {
  auto ttl = parseMacaroonRequest(R"({"ttlSeconds":"x"})");
  ASSERT_FALSE(ttl.isOk());
  EXPECT_EQ(ttl.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ttl.status().message(), "macaroons: ttlSeconds: expected an integer, got string");
  auto ops = parseMacaroonRequest(R"({"ops":[1]})");
  ASSERT_FALSE(ops.isOk());
  EXPECT_EQ(ops.status().message(), "macaroons: ops[0]: expected a string, got integer");
  EXPECT_THAT(parseMacaroonRequest(R"({"ttlSeconds":0})").status().message(),
              HasSubstr("expected an integer in 1..2592000, got 0"));
  EXPECT_THAT(parseMacaroonRequest(R"({"ops":["admin"]})").status().message(),
              HasSubstr("ops[0]: expected \"read\" or \"exec\""));
  EXPECT_THAT(parseMacaroonRequest("[1]").status().message(),
              HasSubstr("macaroons: expected a JSON object, got array"));
  auto defaults = parseMacaroonRequest("");
  ASSERT_TRUE(defaults.isOk());
  EXPECT_EQ(defaults->ttlSeconds, 3600);
  auto ok = parseMacaroonRequest(R"({"ttlSeconds":60,"ops":["read","exec"]})");
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->ops.size(), 2u);
}

TEST(GatewayRequestsTest, ExecBodiesAndQueriesAreChecked) {
  EXPECT_THAT(parseExecRequest(R"({"args":"ls"})", "d").status().message(),
              HasSubstr("exec: args: expected an array of strings, got string"));
  EXPECT_THAT(parseExecRequest(R"({"service":1,"args":["ls"]})", "d").status().message(),
              HasSubstr("exec: service: expected a string"));
  auto x = parseExecRequest(R"({"service":"web","args":["ls"]})", "d");
  ASSERT_TRUE(x.isOk());
  EXPECT_EQ(x->deployment, "d");
  net::HttpRequest req;
  req.query = {{"after", "x"}};
  EXPECT_THAT(parseEventsQuery(req).status().message(), HasSubstr("events: after:"));
  req.query = {{"after", "3"}, {"wait", "99999"}};
  auto q = parseEventsQuery(req);
  ASSERT_TRUE(q.isOk());
  EXPECT_EQ(q->waitMs, 30'000);
  req.query = {{"tail", "-1"}};
  EXPECT_THAT(parseLogsQuery(req).status().message(), HasSubstr("logs: tail:"));
}

}  // namespace
}  // namespace mercato::provider
