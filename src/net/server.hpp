// HttpServer: an HTTP/1.1 server on Boost.Beast with C++20 coroutines, optional TLS.
//
// A Router maps (method, path pattern) to a handler. Patterns are literal segments and
// `{name}` captures ("/ledger/v1/accounts/{address}"). An unknown path answers 404 and a known
// path with the wrong method 405, both as JSON errors.
//
// Handlers come in two shapes:
//  - SyncHandler: returns the response; runs on an I/O thread, so it must not block.
//  - AsyncHandler: receives a ResponseWriter and answers later from any thread (used for
//    group commit, long polls and streams). The connection waits, with no thread held.
//
// WebSocket routes (Router::addWebSocket) take an upgrade request: the handler decides from the
// request (authorization) whether to accept; an error Status refuses the upgrade with the mapped
// HTTP status. Accepted connections exchange whole messages through WebSocketConnection (any
// thread) and WebSocketCallbacks (called on the connection's I/O strand, so they must not block).
//
// Limits (ServerOptions): body size (413), header count and bytes (431), read timeout for a
// request in progress, idle timeout between keep-alive requests. Every failure of a peer is
// handled by closing that connection; the server keeps serving.
//
// Thread-safety: the Router is filled before start() and then read-only. start()/stop() are
// called from the owning thread. ResponseWriter methods are safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.hpp"
#include "common/status.hpp"
#include "net/http.hpp"

namespace mercato::net {

// The reply channel of one request. Exactly one of send() or beginStream()+...+end() is used;
// later calls are ignored. If the writer is dropped without an answer the client gets a 500.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual void send(HttpResponse response) = 0;
  // Starts a chunked response (e.g. application/x-ndjson).
  virtual void beginStream(int status, Headers headers) = 0;
  // Queues one chunk. Returns false once the client has gone away (stop producing then).
  virtual bool writeChunk(std::string data) = 0;
  virtual void end() = 0;
  // True once the peer disconnected or the server is stopping.
  virtual bool closed() const = 0;
};

// One accepted WebSocket connection, as the handler sees it. Messages go out in the order queued.
// Thread-safety: every method may be called from any thread.
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // Queues a message. Returns false once the connection is closing or closed (stop producing).
  virtual bool send(std::string data, bool binary) = 0;
  // Sends the queued messages, then a close frame with `code`/`reason`, and ends the connection.
  virtual void close(int code = 1000, std::string reason = "") = 0;
  virtual bool closed() const = 0;
};

// Called on the connection's I/O strand: must not block.
struct WebSocketCallbacks {
  std::function<void(std::string data, bool binary)> onMessage;
  // Exactly once, after the connection ended for any reason (close, peer gone, server stop).
  std::function<void()> onClose;
};

// Called on an I/O thread before the handshake (must not block). An error refuses the upgrade
// with the Status's HTTP status and JSON error body. On success, the handshake follows; sends
// queued before it completes go out right after it. If the handshake fails, onClose is called.
using WebSocketHandler = std::function<Result<WebSocketCallbacks>(
    const HttpRequest&, std::shared_ptr<WebSocketConnection>)>;

using SyncHandler = std::function<HttpResponse(const HttpRequest&)>;
using AsyncHandler = std::function<void(HttpRequest, std::shared_ptr<ResponseWriter>)>;

class Router {
 public:
  void add(const std::string& method, const std::string& pattern, SyncHandler handler);
  void addAsync(const std::string& method, const std::string& pattern, AsyncHandler handler);
  // A GET with `Upgrade: websocket` on this pattern. A plain GET on it answers 426.
  void addWebSocket(const std::string& pattern, WebSocketHandler handler);

  struct Match {
    const AsyncHandler* handler = nullptr;
    std::map<std::string, std::string> params;
    bool pathKnown = false;  // some route matched the path but not the method
  };
  Match match(const std::string& method, const std::string& path) const;

  struct WebSocketMatch {
    const WebSocketHandler* handler = nullptr;
    std::map<std::string, std::string> params;
  };
  WebSocketMatch matchWebSocket(const std::string& path) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    AsyncHandler handler;
    WebSocketHandler webSocket;  // set for addWebSocket routes (method "GET")
  };
  const Route* find(const std::string& method, const std::string& path,
                    std::map<std::string, std::string>& params, bool& pathKnown) const;
  std::vector<Route> routes_;
};

struct TlsOptions {
  std::string certificatePem;
  std::string privateKeyPem;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free port
  int threads = 2;
  size_t maxBodyBytes = 4 << 20;
  size_t maxHeaderBytes = 16 << 10;
  size_t maxHeaderCount = 64;
  std::chrono::milliseconds readTimeout{10'000};
  std::chrono::milliseconds idleTimeout{60'000};
  size_t maxWebSocketMessageBytes = 1 << 20;  // larger incoming messages close the connection
  std::optional<TlsOptions> tls;
  MetricsRegistry* metrics = nullptr;  // optional: request counts and latencies
};

class HttpServer {
 public:
  // Binds the listening socket. Fails with a clear message on a bad address or a port in use.
  static Result<std::unique_ptr<HttpServer>> create(ServerOptions options, Router router);
  virtual ~HttpServer() = default;
  // Starts the I/O threads; returns immediately.
  virtual void start() = 0;
  // Stops accepting, closes connections, joins the threads. Idempotent.
  virtual void stop() = 0;
  virtual uint16_t port() const = 0;
  // "http://127.0.0.1:PORT" or "https://..."
  virtual std::string url() const = 0;
};

}  // namespace mercato::net
