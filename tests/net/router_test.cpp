#include <gtest/gtest.h>

#include "net/server.hpp"

namespace mercato::net {
namespace {

HttpResponse ok(const HttpRequest&) { return HttpResponse::text(200, "ok"); }

TEST(RouterTest, MatchesLiteralPaths) {
  Router router;
  router.add("GET", "/status", ok);
  auto m = router.match("GET", "/status");
  EXPECT_NE(m.handler, nullptr);
  EXPECT_TRUE(m.params.empty());
}

TEST(RouterTest, CapturesParameters) {
  Router router;
  router.add("GET", "/ledger/v1/accounts/{address}/events/{seq}", ok);
  auto m = router.match("GET", "/ledger/v1/accounts/mx1abc/events/42");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.params.at("address"), "mx1abc");
  EXPECT_EQ(m.params.at("seq"), "42");
}

TEST(RouterTest, CaptureNeedsANonEmptySegment) {
  Router router;
  router.add("GET", "/accounts/{address}", ok);
  EXPECT_EQ(router.match("GET", "/accounts/").handler, nullptr);
  EXPECT_EQ(router.match("GET", "/accounts").handler, nullptr);
  EXPECT_EQ(router.match("GET", "/accounts/a/b").handler, nullptr);
}

TEST(RouterTest, UnknownPathIsNotKnown) {
  Router router;
  router.add("GET", "/a/{x}", ok);
  auto m = router.match("GET", "/b/1");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_FALSE(m.pathKnown);  // -> 404
}

TEST(RouterTest, WrongMethodIsKnownPath) {
  Router router;
  router.add("GET", "/a/{x}", ok);
  router.add("PUT", "/a/{x}", ok);
  auto m = router.match("POST", "/a/1");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.pathKnown);  // -> 405
}

TEST(RouterTest, PicksTheRouteForTheMethod) {
  Router router;
  int which = 0;
  router.add("GET", "/x", [&](const HttpRequest&) {
    which = 1;
    return HttpResponse::text(200, "");
  });
  router.add("POST", "/x", [&](const HttpRequest&) {
    which = 2;
    return HttpResponse::text(200, "");
  });
  auto m = router.match("POST", "/x");
  ASSERT_NE(m.handler, nullptr);
  // The sync handler is wrapped as an async one: call it with a writer that records the answer.
  struct Recorder : ResponseWriter {
    void send(HttpResponse r) override { status = r.status; }
    void beginStream(int, Headers) override {}
    bool writeChunk(std::string) override { return false; }
    void end() override {}
    bool closed() const override { return false; }
    int status = 0;
  };
  auto writer = std::make_shared<Recorder>();
  (*m.handler)(HttpRequest{}, writer);
  EXPECT_EQ(which, 2);
  EXPECT_EQ(writer->status, 200);
}

TEST(RouterTest, LiteralAndCaptureRoutesCoexist) {
  Router router;
  router.add("GET", "/items/latest", ok);
  router.add("GET", "/items/{id}", ok);
  EXPECT_TRUE(router.match("GET", "/items/latest").params.empty());
  EXPECT_EQ(router.match("GET", "/items/7").params.at("id"), "7");
}

}  // namespace
}  // namespace mercato::net
