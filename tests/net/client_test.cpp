#include <chrono>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "net/client.hpp"
#include "net/server.hpp"
#include "test_util.hpp"

namespace mercato::net {
namespace {

using namespace std::chrono_literals;
using testing::startServer;

TEST(ClientTest, RejectsBadUrls) {
  EXPECT_EQ(HttpClient::create("ftp://x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HttpClient::create("http://").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HttpClient::create("http://host:99999").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HttpClient::create("http://host:abc").status().code(), Code::kInvalidArgument);
  auto unpinned = HttpClient::create("https://127.0.0.1:1");
  EXPECT_EQ(unpinned.status().code(), Code::kInvalidArgument);
  EXPECT_NE(unpinned.status().message().find("pinnedKey"), std::string::npos);
  EXPECT_TRUE(HttpClient::create("http://[::1]:8080/prefix/").isOk());
  ClientOptions insecure;
  insecure.insecureSkipVerify = true;
  EXPECT_TRUE(HttpClient::create("https://x", insecure).isOk());
}

TEST(ClientTest, ConnectionRefusedIsUnavailableWithUrl) {
  uint16_t port;
  {
    auto server = startServer(Router{});
    ASSERT_TRUE(server);
    port = server->port();
  }  // closed: nothing listens there now
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto client = HttpClient::create(url, testing::withTimeout(2s));
  ASSERT_TRUE(client.isOk());
  auto r = (*client)->request("GET", "/x");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find(url), std::string::npos) << r.status().message();
}

TEST(ClientTest, TimeoutOnHandlerThatNeverAnswers) {
  std::mutex mu;
  std::vector<std::shared_ptr<ResponseWriter>> held;  // keeps writers alive, unanswered
  Router router;
  router.addAsync("GET", "/never", [&](HttpRequest, std::shared_ptr<ResponseWriter> w) {
    std::lock_guard lock(mu);
    held.push_back(std::move(w));
  });
  router.add("GET", "/ok", [](const HttpRequest&) { return HttpResponse::text(200, "ok"); });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = HttpClient::create(server->url(), testing::withTimeout(200ms));
  ASSERT_TRUE(client.isOk());
  const auto start = std::chrono::steady_clock::now();
  auto r = (*client)->request("GET", "/never");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().toString();
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2s);
  // The client recovers with a fresh connection.
  auto ok = (*client)->request("GET", "/ok");
  ASSERT_TRUE(ok.isOk()) << ok.status().toString();
  EXPECT_EQ(ok->body, "ok");
}

TEST(ClientTest, ReconnectsAfterServerClosedIdleConnection) {
  ServerOptions options;
  options.idleTimeout = 100ms;
  Router router;
  router.add("GET", "/remote",
             [](const HttpRequest& req) { return HttpResponse::text(200, req.remoteAddress); });
  router.add("POST", "/remote",
             [](const HttpRequest& req) { return HttpResponse::text(200, req.remoteAddress); });
  auto server = startServer(std::move(router), options);
  ASSERT_TRUE(server);
  auto client = HttpClient::create(server->url());
  ASSERT_TRUE(client.isOk());
  auto first = (*client)->request("GET", "/remote");
  ASSERT_TRUE(first.isOk());
  std::this_thread::sleep_for(300ms);  // the server closes the idle connection meanwhile
  auto second = (*client)->request("POST", "/remote", "body");
  ASSERT_TRUE(second.isOk()) << second.status().toString();
  EXPECT_EQ(second->status, 200);
  EXPECT_NE(first->body, second->body);  // a new connection
}

TEST(ClientTest, BasePathPrefixesTargets) {
  Router router;
  router.add("GET", "/api/v1/x", [](const HttpRequest& req) {
    return HttpResponse::json(200, {{"path", req.path}});
  });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = HttpClient::create(server->url() + "/api/v1/");
  ASSERT_TRUE(client.isOk());
  auto r = (*client)->getJson("/x");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ((*r)["path"], "/api/v1/x");
}

TEST(ClientTest, ResponseLargerThanLimitFails) {
  Router router;
  router.add("GET", "/big",
             [](const HttpRequest&) { return HttpResponse::text(200, std::string(10000, 'b')); });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  ClientOptions small;
  small.maxResponseBytes = 1000;
  auto client = HttpClient::create(server->url(), small);
  ASSERT_TRUE(client.isOk());
  auto r = (*client)->request("GET", "/big");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
}

TEST(ClientTest, InvalidJsonReplyIsAnError) {
  Router router;
  router.add("GET", "/bad", [](const HttpRequest&) {
    return HttpResponse::text(200, "{oops", "application/json");
  });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = HttpClient::create(server->url());
  ASSERT_TRUE(client.isOk());
  auto r = (*client)->getJson("/bad");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace mercato::net
