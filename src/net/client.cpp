// Blocking HTTP/1.1 client on Boost.Beast (see client.hpp).
//
// Each call runs a small coroutine on the client's private io_context until it completes, so
// Beast's per-operation deadlines (tcp_stream::expires_at) give us the request timeout.
#include <utility>

#include "net/client.hpp"

#include <limits>
#include <optional>

#include <openssl/ssl.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "net/beast_aliases.hpp"
#include "net/client_internal.hpp"
#include "net/tls_internal.hpp"

namespace mercato::net {
namespace {

using namespace mercato::net::detail;  // NOLINT: the shared Asio/Beast aliases
using ErrorCode = boost::system::error_code;

constexpr auto kAwait = asio::use_awaitable;
constexpr uint32_t kMaxResponseHeaderBytes = 64 << 10;

// Errors that mean "the server closed this keep-alive connection before we used it".
bool isStaleConnectionError(const ErrorCode& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::ssl::error::stream_truncated;
}

bool isIpLiteral(const std::string& host) {
  ErrorCode ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

class ClientImpl final : public HttpClient {
 public:
  ClientImpl(ClientOptions options, bool tls, std::string host, std::string port,
             std::string basePath)
      : options_(std::move(options)),
        tls_(tls),
        host_(std::move(host)),
        port_(std::move(port)),
        basePath_(std::move(basePath)) {
    const std::string hostPart = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
    hostHeader_ = hostPart + ":" + port_;
    origin_ = std::string(tls_ ? "https" : "http") + "://" + hostHeader_;
    if (tls_) {
      sslCtx_.emplace(ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(sslCtx_->native_handle(), TLS1_2_VERSION);
      // Trust comes from the pinned identity key, checked after the handshake, not from a CA.
      sslCtx_->set_verify_mode(ssl::verify_none);
    }
  }

  Result<HttpResponse> request(const std::string& method, const std::string& target,
                               const std::string& body, const Headers& headers) override {
    HttpResponse response;
    Status status = run(performRequest(method, target, body, headers, response));
    if (!status.isOk()) return status;
    return response;
  }

  Status stream(const std::string& target, const std::function<bool(std::string_view)>& onData,
                const Headers& headers) override {
    return run(performStream(target, onData, headers));
  }

 private:
  // Runs `op` to completion on the private io_context. An exception (e.g. from a user
  // callback) drops the connection and propagates.
  Status run(asio::awaitable<Status> op) {
    Status result;
    std::exception_ptr error;
    asio::co_spawn(ioc_, std::move(op), [&](std::exception_ptr e, Status s) {
      error = e;
      result = std::move(s);
    });
    ioc_.restart();
    ioc_.run();
    if (error) {
      disconnect();
      std::rethrow_exception(error);
    }
    return result;
  }

  bool connected() const { return plain_ || secure_; }

  void disconnect() {
    ErrorCode ec;
    if (secure_) beast::get_lowest_layer(*secure_).socket().close(ec);
    if (plain_) plain_->socket().close(ec);
    secure_.reset();
    plain_.reset();
    buffer_.clear();
  }

  beast::tcp_stream& lowest() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }

  std::string describe(const std::string& method, const std::string& target) const {
    return method + " " + origin_ + basePath_ + target;
  }

  Status transportError(const ErrorCode& ec, const std::string& what) const {
    if (ec == beast::error::timeout) {
      return deadlineExceeded(what + " timed out after " +
                              std::to_string(options_.timeout.count()) + "ms");
    }
    if (ec == http::error::body_limit) {
      return tooLarge(what + ": response body exceeds " +
                      std::to_string(options_.maxResponseBytes) + " bytes");
    }
    return unavailable(what + ": " + ec.message());
  }

  asio::awaitable<Status> connect(SteadyClock::time_point deadline) {
    disconnect();
    ErrorCode ec;
    tcp::resolver resolver(ioc_);
    auto endpoints =
        co_await resolver.async_resolve(host_, port_, asio::redirect_error(kAwait, ec));
    if (ec) co_return unavailable("cannot resolve " + origin_ + ": " + ec.message());
    beast::tcp_stream stream(ioc_);
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, asio::redirect_error(kAwait, ec));
    if (ec == beast::error::timeout) {
      co_return deadlineExceeded("connecting to " + origin_ + " timed out after " +
                                 std::to_string(options_.timeout.count()) + "ms");
    }
    if (ec) co_return unavailable("cannot connect to " + origin_ + ": " + ec.message());
    stream.socket().set_option(tcp::no_delay(true), ec);
    if (!tls_) {
      plain_ = std::make_unique<PlainStream>(std::move(stream));
      co_return Status::ok();
    }

    auto secure = std::make_unique<TlsStream>(std::move(stream), *sslCtx_);
    if (!isIpLiteral(host_)) SSL_set_tlsext_host_name(secure->native_handle(), host_.c_str());
    beast::get_lowest_layer(*secure).expires_at(deadline);
    co_await secure->async_handshake(ssl::stream_base::client, asio::redirect_error(kAwait, ec));
    if (ec == beast::error::timeout) {
      co_return deadlineExceeded("TLS handshake with " + origin_ + " timed out");
    }
    if (ec) co_return unavailable("TLS handshake with " + origin_ + " failed: " + ec.message());
    if (Status pinned = checkPinnedKey(secure->native_handle(), options_.pinnedKey, origin_);
        !pinned.isOk()) {
      co_return pinned;
    }
    secure_ = std::move(secure);
    co_return Status::ok();
  }

  // Connects if needed, then runs `once` on the stream. On a reused connection that the server
  // had closed, reconnects and tries once more.
  template <class Once>
  asio::awaitable<Status> withConnection(SteadyClock::time_point deadline, Once once) {
    for (int attempt = 0;; ++attempt) {
      const bool reused = connected();
      if (!reused) {
        Status st = co_await connect(deadline);
        if (!st.isOk()) co_return st;
      }
      bool gotResponseBytes = false;
      ErrorCode ec;
      // (No co_await inside ?: -- g++ 12 miscompiles that.)
      Status st;
      if (secure_) {
        st = co_await once(*secure_, ec, gotResponseBytes);
      } else {
        st = co_await once(*plain_, ec, gotResponseBytes);
      }
      if (!ec) co_return st;
      disconnect();
      if (reused && attempt == 0 && !gotResponseBytes && isStaleConnectionError(ec)) continue;
      co_return st;
    }
  }

  http::request<http::string_body> makeRequest(const std::string& method, const std::string& target,
                                               const std::string& body,
                                               const Headers& headers) const {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(basePath_ + target);
    req.version(11);
    req.set(http::field::host, hostHeader_);
    req.set(http::field::user_agent, "mercato");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    return req;
  }

  asio::awaitable<Status> performRequest(const std::string& method, const std::string& target,
                                         const std::string& body, const Headers& headers,
                                         HttpResponse& out) {
    const auto deadline = SteadyClock::now() + options_.timeout;
    const std::string what = describe(method, target);
    if (target.empty() || target.front() != '/') {
      co_return invalidArgument("request target must start with '/', got '" + target + "'");
    }
    auto req = makeRequest(method, target, body, headers);
    Status st = co_await withConnection(
        deadline, [&](auto& stream, ErrorCode& ec, bool& gotBytes) -> asio::awaitable<Status> {
          beast::get_lowest_layer(stream).expires_at(deadline);
          co_await http::async_write(stream, req, asio::redirect_error(kAwait, ec));
          if (ec) co_return transportError(ec, what);
          http::response_parser<http::string_body> parser;
          parser.body_limit(options_.maxResponseBytes);
          parser.header_limit(kMaxResponseHeaderBytes);
          if (method == "HEAD") parser.skip(true);
          // Header first: in Boost 1.74 an eager read of header and body together skips the
          // Content-Length check against body_limit.
          co_await http::async_read_header(stream, buffer_, parser,
                                           asio::redirect_error(kAwait, ec));
          if (!ec && !parser.is_done()) {
            co_await http::async_read(stream, buffer_, parser, asio::redirect_error(kAwait, ec));
          }
          gotBytes = parser.got_some();
          if (ec) co_return transportError(ec, what);
          auto& msg = parser.get();
          out.status = static_cast<int>(msg.result_int());
          out.headers.clear();
          for (const auto& field : msg.base()) {
            auto [it, inserted] =
                out.headers.emplace(std::string(field.name_string()), std::string(field.value()));
            if (!inserted) it->second += ", " + std::string(field.value());
          }
          out.body = std::move(msg.body());
          if (!msg.keep_alive()) disconnect();
          co_return Status::ok();
        });
    co_return st;
  }

  asio::awaitable<Status> performStream(const std::string& target,
                                        const std::function<bool(std::string_view)>& onData,
                                        const Headers& headers) {
    const auto deadline = SteadyClock::now() + options_.timeout;
    const std::string what = describe("GET", target);
    if (target.empty() || target.front() != '/') {
      co_return invalidArgument("request target must start with '/', got '" + target + "'");
    }
    auto req = makeRequest("GET", target, "", headers);
    Status st = co_await withConnection(
        deadline, [&](auto& stream, ErrorCode& ec, bool& gotBytes) -> asio::awaitable<Status> {
          auto& tcpStream = beast::get_lowest_layer(stream);
          tcpStream.expires_at(deadline);
          co_await http::async_write(stream, req, asio::redirect_error(kAwait, ec));
          if (ec) co_return transportError(ec, what);
          http::response_parser<http::buffer_body> parser;
          // Delivered piece by piece, never accumulated. (Not boost::none: Boost 1.74 then
          // rejects every Content-Length body.)
          parser.body_limit(std::numeric_limits<std::uint64_t>::max());
          parser.header_limit(kMaxResponseHeaderBytes);
          co_await http::async_read_header(stream, buffer_, parser,
                                           asio::redirect_error(kAwait, ec));
          gotBytes = parser.got_some();
          if (ec) co_return transportError(ec, what);
          const int status = static_cast<int>(parser.get().result_int());
          const bool ok = status >= 200 && status < 300;
          std::string errorBody;  // for a non-2xx reply
          std::array<char, 16384> piece;
          while (!parser.is_done()) {
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            // Between pieces the timeout restarts: streams may outlive it while data flows.
            tcpStream.expires_after(options_.timeout);
            co_await http::async_read_some(stream, buffer_, parser,
                                           asio::redirect_error(kAwait, ec));
            if (ec == http::error::need_buffer) ec = {};
            if (ec) co_return transportError(ec, what);
            const size_t n = piece.size() - parser.get().body().size;
            if (n == 0) continue;
            if (!ok) {
              if (errorBody.size() + n > options_.maxResponseBytes) break;
              errorBody.append(piece.data(), n);
            } else if (!onData(std::string_view(piece.data(), n))) {
              disconnect();  // the rest of the response is unread: the connection is unusable
              co_return Status::ok();
            }
          }
          if (!parser.is_done() || !parser.get().keep_alive()) disconnect();
          if (!ok) co_return statusFromErrorResponse(status, errorBody);
          co_return Status::ok();
        });
    co_return st;
  }

  ClientOptions options_;
  bool tls_;
  std::string host_, port_, basePath_, hostHeader_, origin_;
  asio::io_context ioc_{1};
  std::optional<ssl::context> sslCtx_;
  std::unique_ptr<PlainStream> plain_;
  std::unique_ptr<TlsStream> secure_;
  beast::flat_buffer buffer_;
};

Result<nlohmann::json> jsonResult(const Result<HttpResponse>& response, const std::string& what) {
  if (!response.isOk()) return response.status();
  if (response->status < 200 || response->status >= 300) {
    return statusFromErrorResponse(response->status, response->body);
  }
  if (response->body.empty()) return nlohmann::json();
  try {
    return nlohmann::json::parse(response->body);
  } catch (const nlohmann::json::parse_error& e) {
    return internalError("the reply to " + what + " is not valid JSON: syntax error at byte " +
                         std::to_string(e.byte));
  }
}

}  // namespace

Status checkPinnedKey(SSL* ssl, const std::optional<crypto::PublicKey>& pinnedKey,
                      const std::string& origin) {
  if (!pinnedKey) return Status::ok();
  X509* peer = SSL_get1_peer_certificate(ssl);
  auto key = x509PublicKey(peer);
  X509_free(peer);
  if (!key.isOk()) {
    return unauthenticated("server certificate of " + origin + ": " + key.status().message());
  }
  if (!(*key == *pinnedKey)) {
    return unauthenticated("server certificate key does not match the pinned node key (" + origin +
                           " presented " + key->hex() + ")");
  }
  return Status::ok();
}

Result<BaseUrl> parseBaseUrl(const std::string& baseUrl, const ClientOptions& options) {
  BaseUrl out;
  std::string_view rest = baseUrl;
  if (rest.starts_with("http://") || rest.starts_with("ws://")) {
    out.tls = false;
    rest.remove_prefix(rest.find("://") + 3);
  } else if (rest.starts_with("https://") || rest.starts_with("wss://")) {
    out.tls = true;
    rest.remove_prefix(rest.find("://") + 3);
  } else {
    return invalidArgument("URL '" + baseUrl + "' must start with http:// or https://");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  out.basePath = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!out.basePath.empty() && out.basePath.back() == '/') out.basePath.pop_back();
  out.port = out.tls ? "443" : "80";
  if (authority.starts_with("[")) {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return invalidArgument("URL '" + baseUrl + "': unterminated [IPv6] host");
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalidArgument("URL '" + baseUrl + "': bad port");
      out.port = std::string(after.substr(1));
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  char* end = nullptr;
  const long portNumber = std::strtol(out.port.c_str(), &end, 10);
  if (out.host.empty()) return invalidArgument("URL '" + baseUrl + "' has no host");
  if (out.port.empty() || *end != '\0' || portNumber <= 0 || portNumber > 65535) {
    return invalidArgument("URL '" + baseUrl + "': port must be 1..65535");
  }
  if (out.tls && !options.pinnedKey && !options.insecureSkipVerify) {
    return invalidArgument("https URL '" + baseUrl +
                           "' needs the node's key (ClientOptions::pinnedKey) to verify the "
                           "server, or insecureSkipVerify");
  }
  return out;
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(const std::string& baseUrl,
                                                       ClientOptions options) {
  ASSIGN_OR_RETURN(BaseUrl url, parseBaseUrl(baseUrl, options));
  return std::unique_ptr<HttpClient>(
      std::make_unique<ClientImpl>(std::move(options), url.tls, std::move(url.host),
                                   std::move(url.port), std::move(url.basePath)));
}

Result<nlohmann::json> HttpClient::getJson(const std::string& target) {
  return jsonResult(request("GET", target, "", {{"Accept", "application/json"}}), "GET " + target);
}

Result<nlohmann::json> HttpClient::postJson(const std::string& target, const nlohmann::json& body) {
  Headers headers{{"Accept", "application/json"}};
  std::string payload;
  if (!body.is_null()) {
    headers["Content-Type"] = "application/json";
    payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return jsonResult(request("POST", target, payload, headers), "POST " + target);
}

}  // namespace mercato::net
