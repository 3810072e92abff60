#include "common/status.hpp"

#include <gtest/gtest.h>

namespace mercato {
namespace {

Result<int> half(int x) {
  if (x % 2) return invalidArgument("x: expected an even number, got " + std::to_string(x));
  return x / 2;
}

Result<int> quarter(int x) {
  ASSIGN_OR_RETURN(int h, half(x));
  ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::ok().isOk());
  Status s = notFound("account mer1x");
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.toString(), "not_found: account mer1x");
  EXPECT_EQ(s.withContext("lookup").message(), "lookup: account mer1x");
}

TEST(Status, CodeNamesRoundTripAndMapToHttp) {
  for (Code c :
       {Code::kInvalidArgument, Code::kUnauthenticated, Code::kPermissionDenied, Code::kNotFound,
        Code::kFailedPrecondition, Code::kTooLarge, Code::kInternal, Code::kPaymentRequired}) {
    EXPECT_EQ(codeFromName(codeName(c)), c);
  }
  EXPECT_EQ(httpStatusFor(Code::kInvalidArgument), 400);
  EXPECT_EQ(httpStatusFor(Code::kUnauthenticated), 401);
  EXPECT_EQ(httpStatusFor(Code::kPermissionDenied), 403);
  EXPECT_EQ(httpStatusFor(Code::kNotFound), 404);
  EXPECT_EQ(httpStatusFor(Code::kFailedPrecondition), 409);
  EXPECT_EQ(httpStatusFor(Code::kPaymentRequired), 402);
  EXPECT_EQ(httpStatusFor(Code::kTooLarge), 413);
  EXPECT_EQ(httpStatusFor(Code::kInternal), 500);
  EXPECT_EQ(codeFromName("no_such_code"), Code::kInternal);
}

TEST(Result, PropagatesThroughMacros) {
  EXPECT_EQ(quarter(8).value(), 2);
  auto bad = quarter(6);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("got 3"), std::string::npos);
  EXPECT_EQ(quarter(5).valueOr(-1), -1);
}

}  // namespace
}  // namespace mercato
