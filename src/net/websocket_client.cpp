// WebSocket client on Boost.Beast (see websocket_client.hpp).
//
// connect() runs the TCP connect, TLS handshake (with key pinning) and the upgrade as one
// coroutine on the client's io_context, driven by the calling thread. Then the io_context moves
// to a private thread that runs a reader coroutine (messages -> queue, condition variable) and,
// on demand, a writer coroutine that drains the outgoing queue; send() and close() post to it.
#include <utility>

#include "net/websocket_client.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <openssl/ssl.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "net/beast_aliases.hpp"
#include "net/client_internal.hpp"

namespace mercato::net {
namespace {

using namespace mercato::net::detail;  // NOLINT: the shared Asio/Beast aliases
namespace websocket = beast::websocket;
using ErrorCode = boost::system::error_code;
constexpr auto kAwait = asio::use_awaitable;

bool isIpLiteral(const std::string& host) {
  ErrorCode ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// State shared by the caller's threads and the I/O thread.
struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<WebSocketMessage> in;
  std::deque<WebSocketMessage> out;
  bool writing = false;
  bool closeRequested = false;
  int closeWith = 1000;
  bool ended = false;  // the reader finished: no more messages
  std::optional<int> closeCode;
  std::string closeReason;
};

template <class Next>
class ClientImpl final : public WebSocketClient {
 public:
  using Ws = websocket::stream<Next>;
  ClientImpl(std::unique_ptr<asio::io_context> ioc, std::unique_ptr<ssl::context> ctx,
             std::unique_ptr<Ws> ws)
      : ioc_(std::move(ioc)), ctx_(std::move(ctx)), ws_(std::move(ws)) {}

  ~ClientImpl() override {
    close(1000);
    {
      std::unique_lock lock(shared_->mu);
      shared_->cv.wait_for(lock, std::chrono::seconds(2), [&] { return shared_->ended; });
    }
    asio::post(*ioc_, [this] {
      ErrorCode ec;
      beast::get_lowest_layer(*ws_).socket().close(ec);
    });
    guard_.reset();
    if (thread_.joinable()) thread_.join();
  }

  void startIo() {
    guard_.emplace(asio::make_work_guard(*ioc_));
    asio::co_spawn(*ioc_, reader(), asio::detached);
    thread_ = std::thread([this] { ioc_->run(); });
  }

  Status send(std::string data, bool binary) override {
    std::lock_guard lock(shared_->mu);
    if (shared_->ended || shared_->closeRequested) return unavailable("websocket is closed");
    shared_->out.push_back({std::move(data), binary});
    kickLocked();
    return Status::ok();
  }

  Result<WebSocketMessage> receive(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(shared_->mu);
    if (!shared_->cv.wait_for(lock, timeout,
                              [&] { return !shared_->in.empty() || shared_->ended; })) {
      return deadlineExceeded("no websocket message within " + std::to_string(timeout.count()) +
                              " ms");
    }
    if (shared_->in.empty()) {
      return unavailable(
          "websocket closed" +
          (shared_->closeCode
               ? " (code " + std::to_string(*shared_->closeCode) +
                     (shared_->closeReason.empty() ? std::string() : ": " + shared_->closeReason) +
                     ")"
               : std::string()));
    }
    WebSocketMessage m = std::move(shared_->in.front());
    shared_->in.pop_front();
    return m;
  }

  void close(int code) override {
    std::lock_guard lock(shared_->mu);
    if (shared_->ended || shared_->closeRequested) return;
    shared_->closeRequested = true;
    shared_->closeWith = code;
    kickLocked();
  }

  bool closed() const override {
    std::lock_guard lock(shared_->mu);
    return shared_->ended;
  }
  std::optional<int> closeCode() const override {
    std::lock_guard lock(shared_->mu);
    return shared_->closeCode;
  }
  std::string closeReason() const override {
    std::lock_guard lock(shared_->mu);
    return shared_->closeReason;
  }

 private:
  // Under mu: starts the writer unless it runs (it re-checks the queue before it stops).
  void kickLocked() {
    if (shared_->writing) return;
    shared_->writing = true;
    asio::co_spawn(*ioc_, writer(), asio::detached);
  }

  asio::awaitable<void> writer() {
    ErrorCode ec;
    for (;;) {
      WebSocketMessage m;
      bool closing = false;
      int code = 1000;
      {
        std::lock_guard lock(shared_->mu);
        if (shared_->ended) {
          shared_->writing = false;
          co_return;
        }
        if (!shared_->out.empty()) {
          m = std::move(shared_->out.front());
          shared_->out.pop_front();
        } else if (shared_->closeRequested) {
          closing = true;
          code = shared_->closeWith;
        } else {
          shared_->writing = false;
          co_return;
        }
      }
      if (closing) {
        co_await ws_->async_close(static_cast<websocket::close_code>(code),
                                  asio::redirect_error(kAwait, ec));
        // Stay "writing" so nothing else is started; the reader sees the close answer.
        co_return;
      }
      ws_->binary(m.binary);
      co_await ws_->async_write(asio::buffer(m.data), asio::redirect_error(kAwait, ec));
      if (ec) {
        beast::get_lowest_layer(*ws_).socket().close(ec);
        std::lock_guard lock(shared_->mu);
        shared_->writing = false;
        co_return;
      }
    }
  }

  asio::awaitable<void> reader() {
    ErrorCode ec;
    beast::flat_buffer buffer;
    for (;;) {
      co_await ws_->async_read(buffer, asio::redirect_error(kAwait, ec));
      if (ec) break;
      std::lock_guard lock(shared_->mu);
      shared_->in.push_back({beast::buffers_to_string(buffer.data()), ws_->got_binary()});
      buffer.consume(buffer.size());
      shared_->cv.notify_all();
    }
    std::lock_guard lock(shared_->mu);
    shared_->ended = true;
    if (ec == websocket::error::closed || ws_->reason().code != websocket::close_code::none) {
      shared_->closeCode = static_cast<int>(ws_->reason().code);
      shared_->closeReason = std::string(ws_->reason().reason.c_str());
    }
    shared_->cv.notify_all();
  }

  std::unique_ptr<asio::io_context> ioc_;
  std::unique_ptr<ssl::context> ctx_;  // null for ws://; outlives the TLS stream
  std::unique_ptr<Ws> ws_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread thread_;
};

// The upgrade on an established stream. A non-101 answer becomes the Status of its body.
template <class Ws>
asio::awaitable<Status> handshake(Ws& ws, const std::string& hostHeader, const std::string& target,
                                  const Headers& headers, SteadyClock::time_point deadline) {
  ErrorCode ec;
  beast::get_lowest_layer(ws).expires_at(deadline);
  ws.set_option(websocket::stream_base::decorator([&headers](websocket::request_type& req) {
    req.set(http::field::user_agent, "mercato");
    for (const auto& [name, value] : headers) req.set(name, value);
  }));
  websocket::response_type res;
  co_await ws.async_handshake(res, hostHeader, target, asio::redirect_error(kAwait, ec));
  if (ec == websocket::error::upgrade_declined || (ec && res.result_int() >= 300)) {
    co_return statusFromErrorResponse(static_cast<int>(res.result_int()), res.body());
  }
  if (ec == beast::error::timeout) co_return deadlineExceeded("websocket handshake timed out");
  if (ec) co_return unavailable("websocket handshake failed: " + ec.message());
  beast::get_lowest_layer(ws).expires_never();
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  co_return Status::ok();
}

}  // namespace

Result<std::unique_ptr<WebSocketClient>> WebSocketClient::connect(const std::string& baseUrl,
                                                                  const std::string& target,
                                                                  const Headers& headers,
                                                                  ClientOptions options) {
  ASSIGN_OR_RETURN(BaseUrl url, parseBaseUrl(baseUrl, options));
  if (target.empty() || target.front() != '/') {
    return invalidArgument("websocket target must start with '/', got '" + target + "'");
  }
  const std::string hostPart =
      url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  const std::string hostHeader = hostPart + ":" + url.port;
  const std::string origin = std::string(url.tls ? "https" : "http") + "://" + hostHeader;
  const std::string fullTarget = url.basePath + target;
  auto ioc = std::make_unique<asio::io_context>(1);
  const auto deadline = SteadyClock::now() + options.timeout;

  // Connect (blocking on this thread's run of the io_context).
  auto runOn = [&](asio::awaitable<Status> op) {
    Status result = internalError("websocket connect did not finish");
    asio::co_spawn(*ioc, std::move(op), [&](std::exception_ptr, Status s) { result = s; });
    ioc->run();
    ioc->restart();
    return result;
  };
  beast::tcp_stream tcpStream(*ioc);
  Status connected = runOn([&]() -> asio::awaitable<Status> {
    ErrorCode ec;
    tcp::resolver resolver(*ioc);
    auto endpoints =
        co_await resolver.async_resolve(url.host, url.port, asio::redirect_error(kAwait, ec));
    if (ec) co_return unavailable("cannot resolve " + origin + ": " + ec.message());
    tcpStream.expires_at(deadline);
    co_await tcpStream.async_connect(endpoints, asio::redirect_error(kAwait, ec));
    if (ec == beast::error::timeout)
      co_return deadlineExceeded("connecting to " + origin + " timed out");
    if (ec) co_return unavailable("cannot connect to " + origin + ": " + ec.message());
    tcpStream.socket().set_option(tcp::no_delay(true), ec);
    co_return Status::ok();
  }());
  RETURN_IF_ERROR(connected);

  if (!url.tls) {
    auto ws = std::make_unique<websocket::stream<PlainStream>>(std::move(tcpStream));
    RETURN_IF_ERROR(runOn(handshake(*ws, hostHeader, fullTarget, headers, deadline)));
    auto client = std::make_unique<ClientImpl<PlainStream>>(std::move(ioc), nullptr, std::move(ws));
    client->startIo();
    return std::unique_ptr<WebSocketClient>(std::move(client));
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(ssl::verify_none);  // trust comes from the pinned key, checked below
  auto ws = std::make_unique<websocket::stream<TlsStream>>(std::move(tcpStream), *ctx);
  if (!isIpLiteral(url.host)) {
    SSL_set_tlsext_host_name(ws->next_layer().native_handle(), url.host.c_str());
  }
  Status secured = runOn([&]() -> asio::awaitable<Status> {
    ErrorCode ec;
    beast::get_lowest_layer(*ws).expires_at(deadline);
    co_await ws->next_layer().async_handshake(ssl::stream_base::client,
                                              asio::redirect_error(kAwait, ec));
    if (ec) co_return unavailable("TLS handshake with " + origin + " failed: " + ec.message());
    co_return checkPinnedKey(ws->next_layer().native_handle(), options.pinnedKey, origin);
  }());
  RETURN_IF_ERROR(secured);
  RETURN_IF_ERROR(runOn(handshake(*ws, hostHeader, fullTarget, headers, deadline)));
  auto client =
      std::make_unique<ClientImpl<TlsStream>>(std::move(ioc), std::move(ctx), std::move(ws));
  client->startIo();
  return std::unique_ptr<WebSocketClient>(std::move(client));
}

}  // namespace mercato::net
