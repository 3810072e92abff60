#include <gtest/gtest.h>

#include "net/http.hpp"
#include "net/request.hpp"

namespace mercato::net {
namespace {

TEST(HttpTest, HeadersCompareCaseInsensitively) {
  Headers h;
  h["Content-Type"] = "application/json";
  EXPECT_EQ(h.count("content-type"), 1u);
  EXPECT_EQ(h.count("CONTENT-TYPE"), 1u);
  HttpRequest req;
  req.headers = h;
  EXPECT_EQ(req.header("content-TYPE"), "application/json");
  EXPECT_EQ(req.header("missing"), "");
}

TEST(HttpTest, UrlDecode) {
  EXPECT_EQ(urlDecode("a%20b+c"), "a b c");
  EXPECT_EQ(urlDecode("%41%62"), "Ab");
  EXPECT_EQ(urlDecode("100%"), "100%");  // invalid escapes stay literal
  EXPECT_EQ(urlDecode("%zz%4"), "%zz%4");
  EXPECT_EQ(urlDecode(""), "");
}

TEST(HttpTest, UrlEncodeRoundTrips) {
  const std::string raw = std::string("a b&c=d/é~") + '\0' + "+";
  const std::string enc = urlEncode(raw);
  EXPECT_EQ(enc.find_first_of(" &=/+"), std::string::npos);
  EXPECT_EQ(urlDecode(enc), raw);
  EXPECT_EQ(urlEncode("AZaz09-_.~"), "AZaz09-_.~");
}

TEST(HttpTest, ParseQuery) {
  auto q = parseQuery("after=3&limit=10&name=a%20b&flag&&x=1&x=2");
  EXPECT_EQ(q.at("after"), "3");
  EXPECT_EQ(q.at("limit"), "10");
  EXPECT_EQ(q.at("name"), "a b");
  EXPECT_EQ(q.at("flag"), "");
  EXPECT_EQ(q.at("x"), "2");
  EXPECT_EQ(q.size(), 5u);
  EXPECT_TRUE(parseQuery("").empty());
}

TEST(HttpTest, JsonAndTextResponses) {
  auto j = HttpResponse::json(201, {{"a", 1}});
  EXPECT_EQ(j.status, 201);
  EXPECT_EQ(j.headers.at("content-type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(j.body)["a"], 1);
  auto t = HttpResponse::text(200, "hi");
  EXPECT_EQ(t.headers.at("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(t.body, "hi");
}

TEST(HttpTest, ErrorResponseCarriesCodeAndMappedStatus) {
  auto r = HttpResponse::error(notFound("no account mx1"));
  EXPECT_EQ(r.status, 404);
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "not_found");
  EXPECT_EQ(body["error"]["message"], "no account mx1");
}

TEST(HttpTest, StatusFromErrorResponseRoundTrips) {
  for (const Status& s : {invalidArgument("bad amount"), unauthenticated("bad sig"),
                          failedPrecondition("wrong nonce"), tooLarge("big"), unavailable("down"),
                          internalError("oops")}) {
    auto r = HttpResponse::error(s);
    Status back = statusFromErrorResponse(r.status, r.body);
    EXPECT_EQ(back.code(), s.code()) << s.toString();
    EXPECT_EQ(back.message(), s.message());
  }
}

TEST(HttpTest, StatusFromNonJsonErrorUsesHttpStatus) {
  Status s = statusFromErrorResponse(503, "<html>busy</html>");
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("503"), std::string::npos);
  EXPECT_NE(s.message().find("busy"), std::string::npos);
  EXPECT_EQ(statusFromErrorResponse(404, "").code(), Code::kNotFound);
  EXPECT_EQ(statusFromErrorResponse(418, "{}").code(), Code::kInvalidArgument);
  EXPECT_TRUE(statusFromErrorResponse(200, "").isOk());
}

TEST(HttpTest, JsonBodyErrorNamesTheOffset) {
  HttpRequest req;
  req.body = R"({"a": 1,, })";
  auto r = req.jsonBody();
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("byte 9"), std::string::npos) << r.status().message();
  req.body = R"({"a": [1, 2]})";
  auto ok = req.jsonBody();
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ((*ok)["a"][1], 2);
}

TEST(HttpTest, QueryParam) {
  HttpRequest req;
  req.query = {{"a", "1"}};
  EXPECT_EQ(req.queryParam("a"), "1");
  EXPECT_EQ(req.queryParam("b"), std::nullopt);
}

// parseRequest runs the server's parsing steps over a complete buffer.
TEST(RequestParseTest, ParsesGetWithQueryAndHeaders) {
  auto out = parseRequest(
      "GET /ledger/v1/events%2Fx?after=3&q=a+b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
      {});
  ASSERT_TRUE(out.request.has_value());
  EXPECT_EQ(out.request->method, "GET");
  EXPECT_EQ(out.request->target, "/ledger/v1/events%2Fx?after=3&q=a+b");
  EXPECT_EQ(out.request->path, "/ledger/v1/events/x");
  EXPECT_EQ(out.request->query.at("after"), "3");
  EXPECT_EQ(out.request->query.at("q"), "a b");
  EXPECT_EQ(out.request->header("x-a"), "1, 2");
}

TEST(RequestParseTest, ParsesChunkedBody) {
  auto out = parseRequest(
      "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      {});
  ASSERT_TRUE(out.request.has_value());
  EXPECT_EQ(out.request->body, "abcde");
}

TEST(RequestParseTest, Limits) {
  RequestLimits limits;
  limits.maxBodyBytes = 4;
  limits.maxHeaderCount = 2;
  limits.maxHeaderBytes = 200;
  auto big = parseRequest("POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", limits);
  ASSERT_TRUE(big.error.has_value());
  EXPECT_EQ(big.error->status, 413);
  auto many = parseRequest("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", limits);
  ASSERT_TRUE(many.error.has_value());
  EXPECT_EQ(many.error->status, 431);
  auto longHeader =
      parseRequest("GET / HTTP/1.1\r\na: " + std::string(500, 'x') + "\r\n\r\n", limits);
  ASSERT_TRUE(longHeader.error.has_value());
  EXPECT_EQ(longHeader.error->status, 431);
}

TEST(RequestParseTest, MalformedAndIncomplete) {
  auto garbage = parseRequest("\x01\x02 garbage\r\n\r\n", {});
  ASSERT_TRUE(garbage.error.has_value());
  EXPECT_EQ(garbage.error->status, 400);
  auto absolute = parseRequest("GET http://evil/ HTTP/1.1\r\n\r\n", {});
  ASSERT_TRUE(absolute.error.has_value());
  EXPECT_EQ(absolute.error->status, 400);
  auto partial = parseRequest("GET / HTTP/1.1\r\nHost:", {});
  EXPECT_FALSE(partial.request.has_value());
  EXPECT_FALSE(partial.error.has_value());
}

}  // namespace
}  // namespace mercato::net
