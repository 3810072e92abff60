// WebSocket routes (Router::addWebSocket) and WebSocketClient, over plain TCP and over TLS with
// the node-key pin: echo in both frame types, server-initiated messages and close, refusal of
// the upgrade with a Status (the client gets that Status back), 426 for a plain GET, a wrong
// pin, and the server's stop ending open connections.
#include <atomic>
#include <chrono>

#include <gtest/gtest.h>

#include "crypto/keys.hpp"
#include "net/tls.hpp"
#include "net/websocket_client.hpp"
#include "test_util.hpp"

namespace mercato::net {
namespace {

using namespace std::chrono_literals;
using testing::startServer;

struct Counters {
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
};

// /ws/{name}: refuses "nobody" with 403, greets, echoes every message with its type, and closes
// with 4001 "bye" when asked.
Router wsRouter(Counters& counters) {
  Router router;
  router.addWebSocket(
      "/ws/{name}",
      [&counters](const HttpRequest& req,
                  std::shared_ptr<WebSocketConnection> conn) -> Result<WebSocketCallbacks> {
        if (req.params.at("name") == "nobody") return permissionDenied("nobody may connect");
        ++counters.opened;
        conn->send("hello " + req.params.at("name") + " " + req.header("X-Test"), false);
        WebSocketCallbacks cb;
        cb.onMessage = [conn](std::string data, bool binary) {
          if (data == "close please") {
            conn->close(4001, "bye");
            return;
          }
          conn->send((binary ? "binary:" : "text:") + data, binary);
        };
        cb.onClose = [&counters] { ++counters.closed; };
        return cb;
      });
  return router;
}

void exchange(const std::string& url, ClientOptions options, Counters& counters) {
  options.timeout = 5s;
  auto ws = WebSocketClient::connect(url, "/ws/alice", {{"X-Test", "42"}}, options);
  ASSERT_TRUE(ws.isOk()) << ws.status().toString();
  auto hello = (*ws)->receive(5s);
  ASSERT_TRUE(hello.isOk()) << hello.status().toString();
  EXPECT_EQ(hello->data, "hello alice 42");
  EXPECT_FALSE(hello->binary);

  ASSERT_TRUE((*ws)->send("ping", false).isOk());
  std::string bytes("\0\x01\xff", 3);
  ASSERT_TRUE((*ws)->send(bytes, true).isOk());
  auto text = (*ws)->receive(5s);
  auto binary = (*ws)->receive(5s);
  ASSERT_TRUE(text.isOk() && binary.isOk());
  EXPECT_EQ(text->data, "text:ping");
  EXPECT_EQ(binary->data, "binary:" + bytes);
  EXPECT_TRUE(binary->binary);

  ASSERT_TRUE((*ws)->send("close please", false).isOk());
  auto end = (*ws)->receive(5s);
  EXPECT_EQ(end.status().code(), Code::kUnavailable) << end.status().toString();
  EXPECT_EQ((*ws)->closeCode(), 4001);
  EXPECT_EQ((*ws)->closeReason(), "bye");
  EXPECT_FALSE((*ws)->send("late", false).isOk());
}

TEST(WebSocketTest, PlainEchoAndServerClose) {
  Counters counters;
  auto server = startServer(wsRouter(counters));
  ASSERT_TRUE(server);
  exchange(server->url(), {}, counters);
  EXPECT_EQ(counters.opened, 1);
  for (int i = 0; i < 100 && counters.closed == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(counters.closed, 1);
}

TEST(WebSocketTest, TlsWithThePinnedNodeKey) {
  Counters counters;
  auto id = crypto::Identity::generate();
  auto cert = makeIdentityCertificate(id, "node", {"127.0.0.1"});
  ASSERT_TRUE(cert.isOk());
  ServerOptions options;
  options.tls = TlsOptions{cert->certificatePem, cert->privateKeyPem};
  auto server = startServer(wsRouter(counters), options);
  ASSERT_TRUE(server);
  ClientOptions pin;
  pin.pinnedKey = id.publicKey();
  exchange(server->url(), pin, counters);

  ClientOptions wrong;
  wrong.pinnedKey = crypto::Identity::generate().publicKey();
  auto refused = WebSocketClient::connect(server->url(), "/ws/alice", {}, wrong);
  EXPECT_EQ(refused.status().code(), Code::kUnauthenticated);
}

TEST(WebSocketTest, RefusedUpgradeCarriesTheStatusAndPlainGetIs426) {
  Counters counters;
  auto server = startServer(wsRouter(counters));
  ASSERT_TRUE(server);
  auto refused = WebSocketClient::connect(server->url(), "/ws/nobody");
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("nobody may connect"), std::string::npos);
  EXPECT_EQ(counters.opened, 0);

  auto http = HttpClient::create(server->url());
  ASSERT_TRUE(http.isOk());
  auto plain = (*http)->request("GET", "/ws/alice");
  ASSERT_TRUE(plain.isOk());
  EXPECT_EQ(plain->status, 426);
  EXPECT_EQ(plain->headers["Upgrade"], "websocket");
}

TEST(WebSocketTest, StoppingTheServerEndsOpenConnections) {
  Counters counters;
  auto server = startServer(wsRouter(counters));
  ASSERT_TRUE(server);
  auto ws = WebSocketClient::connect(server->url(), "/ws/bob");
  ASSERT_TRUE(ws.isOk()) << ws.status().toString();
  ASSERT_TRUE((*ws)->receive(5s).isOk());
  server->stop();
  EXPECT_EQ(counters.closed, 1) << "onClose runs before stop() returns";
  auto end = (*ws)->receive(5s);
  EXPECT_EQ(end.status().code(), Code::kUnavailable);
  EXPECT_TRUE((*ws)->closed());
}

}  // namespace
}  // namespace mercato::net
