// WebSocketClient: a WebSocket client (Boost.Beast) for the CLI and tests, over ws:// or wss://
// with the same identity pinning as HttpClient (ClientOptions::pinnedKey).
//
// connect() performs the HTTP upgrade with the given headers (e.g. a signed Authorization) and
// blocks until the handshake is done; a refused upgrade comes back as the Status carried in the
// server's JSON error body (403 -> kPermissionDenied, ...). Afterwards a private I/O thread reads
// messages into a queue (receive()) and writes what send() queues, in order.
//
// Thread-safety: send(), close() and closed() may be called from any thread; receive() from one
// thread at a time. The destructor closes the connection and joins the I/O thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/status.hpp"
#include "net/client.hpp"
#include "net/http.hpp"

namespace mercato::net {

struct WebSocketMessage {
  std::string data;
  bool binary = false;
};

class WebSocketClient {
 public:
  // `baseUrl` is "http(s)://host:port" (ws/wss are accepted too); `target` the path and query.
  // options.timeout bounds the connect, TLS and upgrade handshake.
  static Result<std::unique_ptr<WebSocketClient>> connect(const std::string& baseUrl,
                                                          const std::string& target,
                                                          const Headers& headers = {},
                                                          ClientOptions options = {});
  virtual ~WebSocketClient() = default;

  // Queues a message. kUnavailable once the connection is closed.
  virtual Status send(std::string data, bool binary) = 0;
  // The next message. kDeadlineExceeded when none arrives within `timeout`; kUnavailable once
  // the connection has closed and every received message was taken (closeCode() then tells
  // how it closed).
  virtual Result<WebSocketMessage> receive(std::chrono::milliseconds timeout) = 0;
  // Sends a close frame (after queued messages); receive() then drains and reports the end.
  virtual void close(int code = 1000) = 0;
  virtual bool closed() const = 0;
  // The close code the peer sent (1000 normal, ...); nullopt while open or when the transport
  // failed without a close frame.
  virtual std::optional<int> closeCode() const = 0;
  virtual std::string closeReason() const = 0;
};

}  // namespace mercato::net
