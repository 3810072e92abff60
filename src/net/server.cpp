// HttpServer on Boost.Beast with C++20 coroutines (see server.hpp).
//
// Structure: one io_context run by N threads. The acceptor and every connection have their own
// strand; a connection is one coroutine (session) that reads a request, dispatches it, waits for
// the handler's answer and writes it, looping while keep-alive holds.
//
// Handlers answer through a ResponseWriter that may live on any thread. The writer and the
// session share an Exchange (a mutex-protected event queue). While the session waits for
// events it sleeps on a steady_timer set to the far future; a writer that queues an event posts
// a cancel of that timer to the session's strand. No thread is held while waiting.
#include <utility>

#include <chrono>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "net/beast_aliases.hpp"
#include "net/beast_request.hpp"
#include "net/server.hpp"
#include "net/websocket_session.hpp"

namespace mercato::net {
namespace {

using namespace mercato::net::detail;  // NOLINT: the shared Asio/Beast aliases

constexpr auto kAwait = asio::use_awaitable;

// ---------------------------------------------------------------------------------------------
// Exchange: what a handler's writer hands to the session.

struct StreamBegin {
  int status;
  Headers headers;
};
struct Chunk {
  std::string data;
};
struct StreamEnd {};
struct Dropped {};  // the writer died without finishing its answer
using Event = std::variant<HttpResponse, StreamBegin, Chunk, StreamEnd, Dropped>;

struct Exchange {
  std::mutex mu;
  std::deque<Event> events;
  bool answered = false;  // send() or beginStream() happened
  bool ended = false;     // the answer is complete (send() or end())
  bool closed = false;    // the session is done with this exchange: peer gone or stopping
  // Set by the session while it waits; wakes it. Cleared when fired and when the session is
  // done, so a writer that outlives the server never touches Asio.
  std::function<void()> wake;

  void pushLocked(Event e) {
    events.push_back(std::move(e));
    if (wake) {
      auto w = std::move(wake);
      wake = nullptr;
      w();
    }
  }
  void close() {
    std::lock_guard lock(mu);
    closed = true;
    wake = nullptr;
  }
};

class ExchangeWriter final : public ResponseWriter {
 public:
  explicit ExchangeWriter(std::shared_ptr<Exchange> ex) : ex_(std::move(ex)) {}
  ~ExchangeWriter() override {
    std::lock_guard lock(ex_->mu);
    if (!ex_->closed && !ex_->ended) ex_->pushLocked(Dropped{});
  }

  void send(HttpResponse response) override {
    std::lock_guard lock(ex_->mu);
    if (ex_->answered || ex_->closed) return;
    ex_->answered = ex_->ended = true;
    ex_->pushLocked(std::move(response));
  }
  void beginStream(int status, Headers headers) override {
    std::lock_guard lock(ex_->mu);
    if (ex_->answered || ex_->closed) return;
    ex_->answered = true;
    ex_->pushLocked(StreamBegin{status, std::move(headers)});
  }
  bool writeChunk(std::string data) override {
    std::lock_guard lock(ex_->mu);
    if (ex_->closed || !ex_->answered || ex_->ended) return false;
    if (!data.empty()) ex_->pushLocked(Chunk{std::move(data)});  // empty = terminator: skip
    return true;
  }
  void end() override {
    std::lock_guard lock(ex_->mu);
    if (ex_->closed || !ex_->answered || ex_->ended) return;
    ex_->ended = true;
    ex_->pushLocked(StreamEnd{});
  }
  bool closed() const override {
    std::lock_guard lock(ex_->mu);
    return ex_->closed;
  }

 private:
  std::shared_ptr<Exchange> ex_;
};

// ---------------------------------------------------------------------------------------------
// Per-connection state reachable from stop(). Every field is touched on the connection's
// strand only.

struct ConnState {
  explicit ConnState(const asio::any_io_executor& strand) : timer(strand) {}
  asio::steady_timer timer;       // the session sleeps on it while a handler works
  tcp::socket* socket = nullptr;  // valid while the session runs
  bool stopping = false;
  std::shared_ptr<Exchange> exchange;    // the request in progress, if any
  std::shared_ptr<WsChannel> webSocket;  // after an accepted WebSocket upgrade
};

std::string endpointString(const tcp::endpoint& ep) {
  const std::string addr = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + addr + "]" : addr) + ":" + std::to_string(ep.port());
}

// Header text must not carry CR/LF (response splitting).
std::string sanitizeHeader(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  }
  return out;
}

int validStatus(int status) {
  if (status >= 100 && status <= 599) return status;
  spdlog::error("http: handler answered with invalid status {}; sending 500", status);
  return 500;
}

void logSpawnError(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    spdlog::error("http: {} failed: {}", what, x.what());
  } catch (...) {
    spdlog::error("http: {} failed with an unknown exception", what);
  }
}

// ---------------------------------------------------------------------------------------------

class ServerImpl final : public HttpServer {
 public:
  ServerImpl(ServerOptions options, Router router)
      : options_(std::move(options)),
        router_(std::move(router)),
        limits_{options_.maxBodyBytes, options_.maxHeaderBytes, options_.maxHeaderCount},
        ioc_(options_.threads),
        acceptor_(asio::make_strand(ioc_)) {
    if (options_.metrics) {
      for (int i = 0; i < 5; ++i) {
        byClass_[i] = options_.metrics->counter(
            "mercato_http_requests_total{code=\"" + std::to_string(i + 1) + "xx\"}",
            "HTTP requests answered, by status class");
      }
      latency_ =
          options_.metrics->histogram("mercato_http_request_duration_seconds",
                                      "Time from a request's header to the end of its response");
    }
  }

  ~ServerImpl() override { stop(); }

  Status init();
  void start() override;
  void stop() override;
  uint16_t port() const override { return port_; }
  std::string url() const override { return url_; }

 private:
  asio::awaitable<void> acceptLoop();
  template <class Stream>
  asio::awaitable<void> session(Stream stream, std::shared_ptr<ConnState> state,
                                std::string remote);
  template <class Stream>
  asio::awaitable<bool> serve(Stream& stream, const std::shared_ptr<ConnState>& state,
                              HttpRequest request, bool keepAlive, unsigned version,
                              SteadyClock::time_point started);
  template <class Stream>
  asio::awaitable<bool> writeResponse(Stream& stream, HttpResponse response, bool keepAlive,
                                      unsigned version, SteadyClock::time_point started);
  template <class Stream>
  asio::awaitable<void> drain(Stream& stream);
  template <class Stream>
  asio::awaitable<void> upgradeToWebSocket(Stream& stream, const std::shared_ptr<ConnState>& state,
                                           const WebSocketHandler& handler,
                                           http::request<http::empty_body> upgrade,
                                           HttpRequest request, SteadyClock::time_point started);
  void record(int status, SteadyClock::time_point started);
  void unregister(const std::shared_ptr<ConnState>& state);
  static void closeConnection(ConnState& state);

  ServerOptions options_;
  Router router_;
  RequestLimits limits_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::optional<ssl::context> tls_;
  uint16_t port_ = 0;
  std::string url_;
  std::vector<std::thread> threads_;
  Counter* byClass_[5] = {};
  Histogram* latency_ = nullptr;

  std::mutex mu_;  // guards the fields below
  bool started_ = false;
  bool stopped_ = false;
  std::set<std::shared_ptr<ConnState>> connections_;
};

Status ServerImpl::init() {
  if (options_.threads < 1) return invalidArgument("server threads must be at least 1");
  const std::string& listen = options_.listen;
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return invalidArgument("listen address '" + listen + "' must be host:port");
  }
  std::string host = listen.substr(0, colon);
  const std::string portText = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  char* endp = nullptr;
  const long portNumber = std::strtol(portText.c_str(), &endp, 10);
  if (portText.empty() || *endp != '\0' || portNumber < 0 || portNumber > 65535) {
    return invalidArgument("listen address '" + listen + "': port must be 0..65535");
  }

  boost::system::error_code ec;
  tcp::resolver resolver(ioc_);
  auto results = resolver.resolve(host, portText, tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return invalidArgument("listen address '" + listen + "': cannot resolve host: " + ec.message());
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on " + listen + ": " + ec.message());
  const tcp::endpoint local = acceptor_.local_endpoint(ec);
  if (ec) return unavailable("cannot listen on " + listen + ": " + ec.message());
  port_ = local.port();

  if (options_.tls) {
    tls_.emplace(ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::single_dh_use);
    tls_->use_certificate_chain(asio::buffer(options_.tls->certificatePem), ec);
    if (ec) return invalidArgument("tls: cannot load the certificate PEM: " + ec.message());
    tls_->use_private_key(asio::buffer(options_.tls->privateKeyPem), ssl::context::pem, ec);
    if (ec) return invalidArgument("tls: cannot load the private key PEM: " + ec.message());
    if (SSL_CTX_check_private_key(tls_->native_handle()) != 1) {
      return invalidArgument("tls: the private key does not match the certificate");
    }
  }

  std::string shownHost =
      local.address().is_unspecified() ? std::string("127.0.0.1") : local.address().to_string();
  if (local.address().is_v6() && !local.address().is_unspecified()) {
    shownHost = "[" + shownHost + "]";
  }
  url_ = std::string(tls_ ? "https" : "http") + "://" + shownHost + ":" + std::to_string(port_);
  return Status::ok();
}

void ServerImpl::start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopped_) return;
    started_ = true;
  }
  asio::co_spawn(acceptor_.get_executor(), acceptLoop(),
                 [](std::exception_ptr e) { logSpawnError(e, "accept loop"); });
  threads_.reserve(options_.threads);
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: I/O thread caught: {}", e.what());
        }
      }
    });
  }
}

void ServerImpl::stop() {
  std::set<std::shared_ptr<ConnState>> connections;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    connections = connections_;
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  for (const auto& c : connections) {
    asio::post(c->timer.get_executor(), [c] { closeConnection(*c); });
  }
  // Without work guards, run() returns once every session has wound down.
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ServerImpl::closeConnection(ConnState& state) {
  state.stopping = true;
  if (state.socket) {
    boost::system::error_code ec;
    state.socket->shutdown(tcp::socket::shutdown_both, ec);
    state.socket->close(ec);
  }
  if (state.exchange) state.exchange->close();
  if (state.webSocket) state.webSocket->end();
  state.timer.cancel();
}

void ServerImpl::unregister(const std::shared_ptr<ConnState>& state) {
  std::lock_guard lock(mu_);
  connections_.erase(state);
}

void ServerImpl::record(int status, SteadyClock::time_point started) {
  if (!options_.metrics) return;
  const int cls = status / 100;
  if (cls >= 1 && cls <= 5) byClass_[cls - 1]->inc();
  latency_->observe(std::chrono::duration<double>(SteadyClock::now() - started).count());
}

asio::awaitable<void> ServerImpl::acceptLoop() {
  asio::steady_timer backoff(acceptor_.get_executor());
  for (;;) {
    boost::system::error_code ec;
    asio::any_io_executor strand = asio::make_strand(ioc_);
    tcp::socket socket = co_await acceptor_.async_accept(strand, asio::redirect_error(kAwait, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // E.g. out of file descriptors: back off instead of spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(kAwait, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    const tcp::endpoint peer = socket.remote_endpoint(ec);
    if (ec) continue;  // the peer already left
    auto state = std::make_shared<ConnState>(strand);
    std::lock_guard lock(mu_);
    if (stopped_) co_return;
    connections_.insert(state);
    // Spawned under mu_ so that a concurrent stop() posts its close after the session start.
    if (tls_) {
      asio::co_spawn(strand,
                     session(TlsStream(beast::tcp_stream(std::move(socket)), *tls_), state,
                             endpointString(peer)),
                     [](std::exception_ptr e) { logSpawnError(e, "connection"); });
    } else {
      asio::co_spawn(strand, session(PlainStream(std::move(socket)), state, endpointString(peer)),
                     [](std::exception_ptr e) { logSpawnError(e, "connection"); });
    }
  }
}

template <class Stream>
asio::awaitable<void> ServerImpl::session(Stream stream, std::shared_ptr<ConnState> state,
                                          std::string remote) {
  constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  auto& tcpStream = beast::get_lowest_layer(stream);
  state->socket = &tcpStream.socket();
  struct Cleanup {
    ServerImpl* server;
    std::shared_ptr<ConnState> state;
    ~Cleanup() {
      state->socket = nullptr;
      if (state->exchange) state->exchange->close();
      state->exchange = nullptr;
      server->unregister(state);
    }
  } cleanup{this, state};

  boost::system::error_code ec;
  if constexpr (kTls) {
    tcpStream.expires_after(options_.readTimeout);
    co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(kAwait, ec));
    if (ec) co_return;
  }

  beast::flat_buffer buffer;
  while (!state->stopping) {
    if (buffer.size() == 0) {  // between requests: the idle timeout applies
      tcpStream.expires_after(options_.idleTimeout);
      const size_t n =
          co_await stream.async_read_some(buffer.prepare(4096), asio::redirect_error(kAwait, ec));
      if (ec) break;
      buffer.commit(n);
    }
    const auto started = SteadyClock::now();
    tcpStream.expires_after(options_.readTimeout);
    RequestParser parser;
    configureParser(parser, limits_);
    // Header first, then body: the header limits are checked before any body is read, and in
    // Boost 1.74 an eager read of header and body together skips the Content-Length check
    // against body_limit.
    co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(kAwait, ec));
    std::optional<HttpResponse> refusal;
    if (!ec) refusal = checkHeaderLimits(parser, limits_);
    if (!ec && !refusal && !parser.is_done()) {
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(stream, asio::buffer(kContinue),
                                   asio::redirect_error(kAwait, ec));
      }
      if (!ec) {
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(kAwait, ec));
      }
    }
    if (ec) refusal = responseForReadError(ec, limits_);
    if (refusal) {  // the request stream is out of sync: answer, then close
      co_await writeResponse(stream, std::move(*refusal), false, 11, started);
      co_await drain(stream);
      break;
    }
    if (ec) break;  // EOF, reset or timeout: nobody to answer

    const bool keepAlive = parser.get().keep_alive();
    const unsigned version = parser.get().version();
    std::optional<http::request<http::empty_body>> upgrade;
    if (websocket::is_upgrade(parser.get())) upgrade.emplace(parser.get().base());
    auto request = toHttpRequest(parser.release(), remote);
    if (!request.isOk()) {
      co_await writeResponse(stream, HttpResponse::error(request.status()), false, version,
                             started);
      co_await drain(stream);
      break;
    }
    if (upgrade) {
      if (auto ws = router_.matchWebSocket(request->path); ws.handler) {
        request->params = std::move(ws.params);
        co_await upgradeToWebSocket(stream, state, *ws.handler, std::move(*upgrade),
                                    std::move(request).value(), started);
        break;
      }
    }
    const bool keep =
        co_await serve(stream, state, std::move(request).value(), keepAlive, version, started);
    if (!keep) break;
  }
  tcpStream.socket().shutdown(tcp::socket::shutdown_both, ec);
  tcpStream.close();
}

// Dispatches one request and writes its answer. Returns whether the connection stays usable.
template <class Stream>
asio::awaitable<bool> ServerImpl::serve(Stream& stream, const std::shared_ptr<ConnState>& state,
                                        HttpRequest request, bool keepAlive, unsigned version,
                                        SteadyClock::time_point started) {
  Router::Match match = router_.match(request.method, request.path);
  if (!match.handler) {
    HttpResponse response =
        match.pathKnown
            ? HttpResponse::error(405, "method_not_allowed",
                                  "method " + request.method + " is not allowed on " + request.path)
            : HttpResponse::error(404, codeName(Code::kNotFound),
                                  "no route for " + request.method + " " + request.path);
    const bool keep =
        co_await writeResponse(stream, std::move(response), keepAlive, version, started);
    co_return keep;
  }
  request.params = std::move(match.params);
  const std::string target = request.target;

  auto exchange = std::make_shared<Exchange>();
  state->exchange = exchange;
  struct Done {
    ConnState& state;
    ~Done() {
      if (state.exchange) state.exchange->close();
      state.exchange = nullptr;
    }
  } done{*state};

  {
    auto writer = std::make_shared<ExchangeWriter>(exchange);
    const std::string method = request.method;
    try {
      (*match.handler)(std::move(request), writer);
    } catch (const std::exception& e) {
      spdlog::error("http: handler for {} {} threw: {}", method, target, e.what());
      writer->send(HttpResponse::error(internalError("internal error while handling the request")));
    } catch (...) {
      spdlog::error("http: handler for {} {} threw a non-exception", method, target);
      writer->send(HttpResponse::error(internalError("internal error while handling the request")));
    }
  }  // our reference to the writer goes away: if nobody kept it, it reports Dropped

  auto& tcpStream = beast::get_lowest_layer(stream);
  boost::system::error_code ec;
  int streamStatus = 0;
  for (;;) {
    std::deque<Event> events;
    {
      std::lock_guard lock(exchange->mu);
      if (exchange->events.empty()) {
        if (state->stopping) co_return false;
        exchange->wake = [state] {
          asio::post(state->timer.get_executor(), [state] { state->timer.cancel(); });
        };
        state->timer.expires_at(asio::steady_timer::time_point::max());
      } else {
        events.swap(exchange->events);
      }
    }
    if (events.empty()) {
      co_await state->timer.async_wait(asio::redirect_error(kAwait, ec));
      continue;
    }
    for (Event& event : events) {
      if (auto* response = std::get_if<HttpResponse>(&event)) {
        const bool keep =
            co_await writeResponse(stream, std::move(*response), keepAlive, version, started);
        co_return keep;
      }
      if (std::holds_alternative<Dropped>(event)) {
        if (streamStatus != 0) {  // a truncated stream must not look complete: abort it
          spdlog::warn("http: stream for {} abandoned by its handler", target);
          record(streamStatus, started);
          co_return false;
        }
        spdlog::error("http: handler dropped its ResponseWriter without answering");
        const bool keep = co_await writeResponse(
            stream, HttpResponse::error(internalError("the handler did not answer")), keepAlive,
            version, started);
        co_return keep;
      }
      if (auto* begin = std::get_if<StreamBegin>(&event)) {
        streamStatus = validStatus(begin->status);
        http::response<http::empty_body> head{static_cast<http::status>(streamStatus), version};
        for (const auto& [name, value] : begin->headers) {
          head.set(sanitizeHeader(name), sanitizeHeader(value));
        }
        head.erase(http::field::content_length);
        head.keep_alive(keepAlive);
        head.chunked(true);
        http::response_serializer<http::empty_body> serializer{head};
        tcpStream.expires_after(options_.readTimeout);
        co_await http::async_write_header(stream, serializer, asio::redirect_error(kAwait, ec));
      } else if (auto* chunk = std::get_if<Chunk>(&event)) {
        tcpStream.expires_after(options_.readTimeout);
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(chunk->data)),
                                   asio::redirect_error(kAwait, ec));
      } else if (std::holds_alternative<StreamEnd>(event)) {
        tcpStream.expires_after(options_.readTimeout);
        co_await asio::async_write(stream, http::make_chunk_last(),
                                   asio::redirect_error(kAwait, ec));
        record(streamStatus, started);
        co_return !ec && keepAlive;
      }
      if (ec) {  // the peer went away mid-stream
        record(streamStatus, started);
        co_return false;
      }
    }
  }
}

template <class Stream>
asio::awaitable<void> ServerImpl::upgradeToWebSocket(
    Stream& stream, const std::shared_ptr<ConnState>& state, const WebSocketHandler& handler,
    http::request<http::empty_body> upgrade, HttpRequest request, SteadyClock::time_point started) {
  auto channel = WsChannel::make(state->timer.get_executor());
  auto connection = std::make_shared<WsConnection>(channel);
  Result<WebSocketCallbacks> callbacks = internalError("the websocket handler did not answer");
  const std::string target = request.target;
  try {
    callbacks = handler(request, connection);
  } catch (const std::exception& e) {
    spdlog::error("http: websocket handler for {} threw: {}", target, e.what());
    callbacks = internalError("internal error while handling the request");
  }
  if (!callbacks.isOk()) {
    co_await writeResponse(stream, HttpResponse::error(callbacks.status()), false,
                           upgrade.version(), started);
    co_return;
  }
  record(101, started);
  state->webSocket = channel;
  co_await serveWebSocket(stream, std::move(upgrade), channel, std::move(callbacks).value(),
                          options_.readTimeout, options_.maxWebSocketMessageBytes);
  state->webSocket = nullptr;
}

template <class Stream>
asio::awaitable<bool> ServerImpl::writeResponse(Stream& stream, HttpResponse response,
                                                bool keepAlive, unsigned version,
                                                SteadyClock::time_point started) {
  const int status = validStatus(response.status);
  http::response<http::string_body> message{static_cast<http::status>(status), version};
  for (const auto& [name, value] : response.headers) {
    message.set(sanitizeHeader(name), sanitizeHeader(value));
  }
  message.erase(http::field::transfer_encoding);
  message.keep_alive(keepAlive);
  message.body() = std::move(response.body);
  message.prepare_payload();
  record(status, started);  // before the write, so the count is visible when the peer has it
  auto& tcpStream = beast::get_lowest_layer(stream);
  tcpStream.expires_after(options_.readTimeout);
  boost::system::error_code ec;
  co_await http::async_write(stream, message, asio::redirect_error(kAwait, ec));
  co_return !ec && keepAlive;
}

// After refusing a request whose body may still be arriving: stop sending and discard input
// for a short, bounded while, so that the peer reads our answer instead of a reset.
template <class Stream>
asio::awaitable<void> ServerImpl::drain(Stream& stream) {
  auto& tcpStream = beast::get_lowest_layer(stream);
  boost::system::error_code ec;
  tcpStream.socket().shutdown(tcp::socket::shutdown_send, ec);
  tcpStream.expires_after(
      std::min<std::chrono::milliseconds>(options_.readTimeout, std::chrono::seconds(2)));
  constexpr size_t kMaxDrain = 16 << 20;
  std::array<char, 16384> scratch;
  size_t drained = 0;
  while (!ec && drained < kMaxDrain) {
    drained +=
        co_await tcpStream.async_read_some(asio::buffer(scratch), asio::redirect_error(kAwait, ec));
  }
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::create(ServerOptions options, Router router) {
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(router));
  RETURN_IF_ERROR(server->init());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace mercato::net
