#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "common/metrics.hpp"
#include "net/client.hpp"
#include "net/server.hpp"
#include "test_util.hpp"

namespace mercato::net {
namespace {

using namespace std::chrono_literals;
using testing::RawSocket;
using testing::startServer;
using testing::Workers;

std::unique_ptr<HttpClient> clientFor(const HttpServer& server, ClientOptions options = {}) {
  auto client = HttpClient::create(server.url(), options);
  EXPECT_TRUE(client.isOk()) << client.status().toString();
  return std::move(client).value();
}

Router echoRouter() {
  Router router;
  router.add("GET", "/hello/{name}", [](const HttpRequest& req) {
    return HttpResponse::json(
        200, {{"hello", req.params.at("name")}, {"q", req.queryParam("q").value_or("")}});
  });
  router.add("POST", "/echo", [](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    return HttpResponse::json(200, {{"got", *body}});
  });
  router.add("GET", "/remote",
             [](const HttpRequest& req) { return HttpResponse::text(200, req.remoteAddress); });
  return router;
}

TEST(ServerTest, SyncGetAndPostJsonRoundTrip) {
  auto server = startServer(echoRouter());
  ASSERT_TRUE(server);
  EXPECT_NE(server->port(), 0);
  EXPECT_EQ(server->url(), "http://127.0.0.1:" + std::to_string(server->port()));
  auto client = clientFor(*server);

  auto get = client->getJson("/hello/world?q=a%20b");
  ASSERT_TRUE(get.isOk()) << get.status().toString();
  EXPECT_EQ((*get)["hello"], "world");
  EXPECT_EQ((*get)["q"], "a b");

  nlohmann::json payload = {{"amount", "1.5"}, {"list", {1, 2, 3}}};
  auto post = client->postJson("/echo", payload);
  ASSERT_TRUE(post.isOk()) << post.status().toString();
  EXPECT_EQ((*post)["got"], payload);

  auto bad = client->request("POST", "/echo", "{not json", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(bad.isOk());
  EXPECT_EQ(bad->status, 400);
  Status st = statusFromErrorResponse(bad->status, bad->body);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
}

TEST(ServerTest, UnknownRouteIs404AndWrongMethodIs405) {
  auto server = startServer(echoRouter());
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  auto missing = client->request("GET", "/nope");
  ASSERT_TRUE(missing.isOk());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing->body)["error"]["code"], "not_found");
  auto wrong = client->request("DELETE", "/echo");
  ASSERT_TRUE(wrong.isOk());
  EXPECT_EQ(wrong->status, 405);
  EXPECT_TRUE(nlohmann::json::parse(wrong->body)["error"].contains("message"));
  // getJson turns the error body into a Status.
  auto asJson = client->getJson("/nope");
  EXPECT_EQ(asJson.status().code(), Code::kNotFound);
}

TEST(ServerTest, AsyncHandlerAnswersFromAnotherThread) {
  Workers workers;
  Router router;
  router.addAsync("GET", "/slow", [&](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
    workers.run([w] {
      std::this_thread::sleep_for(50ms);
      w->send(HttpResponse::text(200, "late"));
      w->send(HttpResponse::text(500, "ignored"));  // a second answer is ignored
    });
  });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  const auto start = std::chrono::steady_clock::now();
  auto r = client->request("GET", "/slow");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "late");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  // The connection is still usable afterwards.
  auto again = client->request("GET", "/slow");
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->body, "late");
}

TEST(ServerTest, StreamsChunksInOrder) {
  Workers workers;
  Router router;
  router.addAsync("GET", "/events", [&](HttpRequest, std::shared_ptr<ResponseWriter> w) {
    w->beginStream(200, {{"Content-Type", "application/x-ndjson"}});
    workers.run([w] {
      for (int i = 1; i <= 3; ++i) {
        std::this_thread::sleep_for(20ms);
        EXPECT_TRUE(w->writeChunk("{\"seq\":" + std::to_string(i) + "}\n"));
      }
      w->end();
      EXPECT_FALSE(w->writeChunk("after end"));
    });
  });
  router.add("GET", "/ping", [](const HttpRequest&) { return HttpResponse::text(200, "pong"); });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  std::string all;
  int pieces = 0;
  Status st = client->stream("/events", [&](std::string_view piece) {
    all.append(piece);
    ++pieces;
    return true;
  });
  ASSERT_TRUE(st.isOk()) << st.toString();
  EXPECT_EQ(all, "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3}\n");
  EXPECT_GE(pieces, 3);  // delivered as they arrived, not in one piece at the end
  // The connection stays usable after a complete stream.
  auto r = client->request("GET", "/ping");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->body, "pong");
}

TEST(ServerTest, StreamWriterSeesClientGoAway) {
  Workers workers;
  std::atomic<bool> sawClosed{false};
  Router router;
  router.addAsync("GET", "/events", [&](HttpRequest, std::shared_ptr<ResponseWriter> w) {
    w->beginStream(200, {});
    workers.run([w, &sawClosed] {
      for (int i = 0; i < 2000; ++i) {  // bounded: ~10 s at most
        if (!w->writeChunk(std::string(1024, 'x'))) break;
        std::this_thread::sleep_for(5ms);
      }
      sawClosed = w->closed();
      w->end();
    });
  });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  size_t received = 0;
  Status st = client->stream("/events", [&](std::string_view piece) {
    received += piece.size();
    return false;  // stop after the first piece: the client drops the connection
  });
  EXPECT_TRUE(st.isOk());
  EXPECT_GT(received, 0u);
  workers.join();
  EXPECT_TRUE(sawClosed);
}

TEST(ServerTest, ErrorStatusOfStreamBecomesStatus) {
  Router router;
  router.add("GET", "/events",
             [](const HttpRequest&) { return HttpResponse::error(permissionDenied("no")); });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  Status st = client->stream("/events", [](std::string_view) { return true; });
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_EQ(st.message(), "no");
}

TEST(ServerTest, KeepAliveReusesOneConnection) {
  auto server = startServer(echoRouter());
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  std::set<std::string> remotes;
  for (int i = 0; i < 5; ++i) {
    auto r = client->request("GET", "/remote");
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    remotes.insert(r->body);
  }
  EXPECT_EQ(remotes.size(), 1u) << "each request used a new connection";
  // A second client is a second connection.
  auto other = clientFor(*server)->request("GET", "/remote");
  ASSERT_TRUE(other.isOk());
  EXPECT_EQ(remotes.count(other->body), 0u);
}

TEST(ServerTest, OversizeBodyIs413AndServerKeepsServing) {
  ServerOptions options;
  options.maxBodyBytes = 1024;
  auto server = startServer(echoRouter(), options);
  ASSERT_TRUE(server);
  auto r = clientFor(*server)->request("POST", "/echo", std::string(100 * 1024, 'x'));
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "too_large");
  // A chunked body over the limit too.
  RawSocket raw(server->port());
  ASSERT_TRUE(raw.connected());
  raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  raw.send("800\r\n" + std::string(0x800, 'y') + "\r\n0\r\n\r\n");
  EXPECT_EQ(raw.read("\r\n").substr(0, 12), "HTTP/1.1 413");
  // The server still serves the next connection.
  auto next = clientFor(*server)->postJson("/echo", {{"a", 1}});
  ASSERT_TRUE(next.isOk()) << next.status().toString();
}

TEST(ServerTest, TooManyHeadersIs431) {
  ServerOptions options;
  options.maxHeaderCount = 8;
  options.maxHeaderBytes = 2048;
  auto server = startServer(echoRouter(), options);
  ASSERT_TRUE(server);
  Headers many;
  for (int i = 0; i < 20; ++i) many["X-H" + std::to_string(i)] = "v";
  auto r = clientFor(*server)->request("GET", "/remote", "", many);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->status, 431);
  auto huge =
      clientFor(*server)->request("GET", "/remote", "", {{"X-Big", std::string(4096, 'a')}});
  ASSERT_TRUE(huge.isOk()) << huge.status().toString();
  EXPECT_EQ(huge->status, 431);
  auto fine = clientFor(*server)->request("GET", "/remote");
  ASSERT_TRUE(fine.isOk());
  EXPECT_EQ(fine->status, 200);
}

TEST(ServerTest, MalformedRequestIs400AndServerKeepsServing) {
  auto server = startServer(echoRouter());
  ASSERT_TRUE(server);
  for (const std::string& bytes :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
        std::string("GET /remote HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
        std::string("\x00\x01\x02\xff\r\n\r\n", 8)}) {
    RawSocket raw(server->port());
    ASSERT_TRUE(raw.connected());
    raw.send(bytes);
    bool closed = false;
    const std::string reply = raw.read("", &closed);
    EXPECT_TRUE(closed) << "the server must close a connection after a malformed request";
    if (!reply.empty()) {
      EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 400") << reply;
    }
  }
  auto r = clientFor(*server)->request("GET", "/remote");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 200);
}

TEST(ServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
  ServerOptions options;
  options.idleTimeout = 200ms;
  auto server = startServer(echoRouter(), options);
  ASSERT_TRUE(server);
  RawSocket raw(server->port());
  ASSERT_TRUE(raw.connected());
  raw.send("GET /remote HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string reply = raw.read("127.0.0.1:");
  EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 200");
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  raw.read("", &closed);  // the receive timeout is 3 s
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 2s);
}

TEST(ServerTest, SlowRequestIsCutByReadTimeout) {
  ServerOptions options;
  options.readTimeout = 200ms;
  auto server = startServer(echoRouter(), options);
  ASSERT_TRUE(server);
  RawSocket raw(server->port());
  ASSERT_TRUE(raw.connected());
  raw.send("GET /remote HTTP/1.1\r\nHost:");  // never finished
  bool closed = false;
  const auto start = std::chrono::steady_clock::now();
  raw.read("", &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(ServerTest, ThrowingHandlerGives500AndServerKeepsServing) {
  Router router = echoRouter();
  router.add("GET", "/throw",
             [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  auto r = client->request("GET", "/throw");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "internal");
  EXPECT_EQ(client->getJson("/throw").status().code(), Code::kInternal);
  auto ok = client->request("GET", "/remote");
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->status, 200);
}

TEST(ServerTest, DroppedWriterGives500) {
  Router router;
  router.addAsync("GET", "/drop", [](HttpRequest, std::shared_ptr<ResponseWriter>) {});
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  auto r = clientFor(*server)->request("GET", "/drop");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 500);
}

TEST(ServerTest, CountsRequestsInMetrics) {
  MetricsRegistry metrics;
  ServerOptions options;
  options.metrics = &metrics;
  auto server = startServer(echoRouter(), options);
  ASSERT_TRUE(server);
  auto client = clientFor(*server);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client->request("GET", "/remote").isOk());
  ASSERT_TRUE(client->request("GET", "/missing").isOk());
  EXPECT_EQ(metrics.counter("mercato_http_requests_total{code=\"2xx\"}", "")->value(), 3u);
  EXPECT_EQ(metrics.counter("mercato_http_requests_total{code=\"4xx\"}", "")->value(), 1u);
  const std::string text = metrics.render();
  EXPECT_NE(text.find("mercato_http_request_duration_seconds"), std::string::npos);
}

TEST(ServerTest, HundredConcurrentClients) {
  auto server = startServer(echoRouter());
  ASSERT_TRUE(server);
  constexpr int kClients = 100, kRequests = 20;
  std::atomic<int> succeeded{0};
  {
    Workers workers;
    for (int c = 0; c < kClients; ++c) {
      workers.run([&, c] {
        auto client = HttpClient::create(server->url(), testing::withTimeout(10s));
        if (!client.isOk()) return;
        for (int i = 0; i < kRequests; ++i) {
          auto r = (*client)->postJson("/echo", {{"c", c}, {"i", i}});
          if (r.isOk() && (*r)["got"]["i"] == i) ++succeeded;
        }
      });
    }
  }
  EXPECT_EQ(succeeded.load(), kClients * kRequests);
}

TEST(ServerTest, CreateFailsClearlyOnBadListenAddress) {
  auto bad = HttpServer::create(testing::listenOn("nonsense"), Router{});
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  auto first = startServer(Router{});
  ASSERT_TRUE(first);
  auto busy =
      HttpServer::create(testing::listenOn("127.0.0.1:" + std::to_string(first->port())), Router{});
  ASSERT_FALSE(busy.isOk());
  EXPECT_NE(busy.status().message().find("cannot listen"), std::string::npos);
}

TEST(ServerTest, StopIsIdempotentAndClosesPendingExchanges) {
  std::shared_ptr<ResponseWriter> held;
  std::mutex mu;
  Router router;
  router.addAsync("GET", "/hang", [&](HttpRequest, std::shared_ptr<ResponseWriter> w) {
    std::lock_guard lock(mu);
    held = std::move(w);
  });
  auto server = startServer(std::move(router));
  ASSERT_TRUE(server);
  Workers workers;
  workers.run([url = server->url()] {
    auto client = HttpClient::create(url, testing::withTimeout(5s));
    auto r = (*client)->request("GET", "/hang");
    EXPECT_FALSE(r.isOk());  // the server went away
  });
  for (int i = 0; i < 500; ++i) {  // wait for the handler, bounded
    {
      std::lock_guard lock(mu);
      if (held) break;
    }
    std::this_thread::sleep_for(2ms);
  }
  std::lock_guard lock(mu);
  ASSERT_TRUE(held);
  EXPECT_FALSE(held->closed());
  server->stop();
  server->stop();
  EXPECT_TRUE(held->closed());
  held->send(HttpResponse::text(200, "too late"));  // ignored, must not crash
}

}  // namespace
}  // namespace mercato::net
