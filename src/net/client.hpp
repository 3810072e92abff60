// HttpClient: a blocking HTTP/1.1 client (Boost.Beast) for the CLI, tests, and services that
// call other nodes from their worker threads. It keeps one keep-alive connection per client
// and reconnects transparently when the server closed it.
//
// TLS: for https:// URLs the server's certificate must carry the Ed25519 key given in
// ClientOptions::pinnedKey (certificates are bound to node identities, see tls.hpp); without a
// pin, https is refused unless `insecureSkipVerify` is set.
//
// Thread-safety: one HttpClient per thread (it owns a connection). Create more for parallelism.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "net/http.hpp"

namespace mercato::net {

struct ClientOptions {
  std::chrono::milliseconds timeout{30'000};  // per request, connect included
  std::optional<crypto::PublicKey> pinnedKey;
  bool insecureSkipVerify = false;
  size_t maxResponseBytes = 64 << 20;

  static ClientOptions withTimeout(std::chrono::milliseconds t) {
    ClientOptions o;
    o.timeout = t;
    return o;
  }
};

class HttpClient {
 public:
  // `baseUrl` is "http://host:port" or "https://host:port" (a path prefix is allowed).
  static Result<std::unique_ptr<HttpClient>> create(const std::string& baseUrl,
                                                    ClientOptions options = {});
  virtual ~HttpClient() = default;

  // Sends a request to baseUrl + target. A transport failure is kUnavailable (or
  // kDeadlineExceeded on timeout); any HTTP status, including 4xx/5xx, is a response.
  virtual Result<HttpResponse> request(const std::string& method, const std::string& target,
                                       const std::string& body = "",
                                       const Headers& headers = {}) = 0;

  // JSON convenience: sends `body` (if not null) as JSON and parses the reply. A non-2xx reply
  // becomes the Status carried in its error body.
  Result<nlohmann::json> getJson(const std::string& target);
  Result<nlohmann::json> postJson(const std::string& target, const nlohmann::json& body);

  // Streams a chunked/long response, calling `onData` with each piece of body as it arrives;
  // returning false from onData stops reading. Used for NDJSON event streams. The timeout
  // covers connecting and the response header, then each wait for the next piece (a stream
  // may run for longer than the timeout as long as data keeps coming). A non-2xx reply becomes
  // the Status carried in its error body. `headers` are sent with the GET (e.g. Authorization).
  virtual Status stream(const std::string& target,
                        const std::function<bool(std::string_view)>& onData,
                        const Headers& headers = {}) = 0;
};

}  // namespace mercato::net
