// GatewayClient: the publisher's side of a provider gateway (docs/protocols.md, "Gateway API").
//
// It sends sealed bundles (one request up to smallBundleLimit, otherwise the resumable uploads
// API in chunks), checks the signed receipt against the provider's node key, and calls the
// deployment API (status, list, logs, events, exec, macaroons). Every request carries a
// Mercato-Sig signature by the publisher's identity.
//
// Trust: the node key is the provider's key as listed in the registry. For an https gateway it
// is pinned on the TLS connection (the certificate must carry that key); for either scheme the
// receipt must be signed by it. The receipt must also name the escrow and publisher the caller
// expects, so a provider cannot confirm a deployment it did not make for us.
//
// Thread-safety: one GatewayClient per thread (it owns a keep-alive connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "publisher/receipt.hpp"

namespace mercato::net {
class HttpClient;
}

namespace mercato::publisher {

struct GatewayClientOptions {
  std::chrono::milliseconds timeout{30'000};  // per request
  // Bundles up to this size go in one POST /gateway/v1/deployments; larger ones are uploaded.
  size_t smallBundleLimit = 2 << 20;
  size_t chunkBytes = 1 << 20;  // upper bound; the gateway's maxChunk may lower it
  // Consecutive failed chunks (transport error, 409, 5xx) tolerated before giving up; each is
  // followed by GET /uploads/{id} and a resume from the offset the gateway reports.
  int maxChunkRetries = 5;
  std::chrono::milliseconds retryBackoff{250};  // times the attempt number
  // Longest silence tolerated on a followed log stream before it counts as broken.
  std::chrono::milliseconds followIdleTimeout{3'600'000};
  Clock* clock = nullptr;  // for Mercato-Sig timestamps; nullptr = the system clock
};

// What deploy() checks the receipt against, beyond the node key's signature.
struct DeployExpectation {
  std::string escrowId;         // required
  std::string providerAddress;  // "" = not checked
};

// Upload progress: bytes the gateway has acknowledged, out of `total`.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct LogLine {
  std::string instance;
  std::string stream;  // "stdout" / "stderr"
  std::string text;
};

struct ExecResult {
  int exitCode = 0;
  std::string stdoutText;
  std::string stderrText;
};

class GatewayClient {
 public:
  // `gatewayUrl` is the provider's registered gateway URL ("https://host:8443", a path prefix
  // is allowed). Errors: kInvalidArgument for a malformed URL.
  static Result<std::unique_ptr<GatewayClient>> create(const std::string& gatewayUrl,
                                                       const crypto::PublicKey& providerNodeKey,
                                                       const crypto::Identity& publisher,
                                                       GatewayClientOptions options = {});
  ~GatewayClient();

  // Sends the sealed bundle and returns the verified receipt. Errors: the gateway's rejection
  // (4xx, e.g. kFailedPrecondition for an unfunded escrow), kUnavailable after the retries,
  // kUnauthenticated for a receipt not signed by the node key, kPermissionDenied for a receipt
  // naming another escrow, publisher or provider.
  Result<Receipt> deploy(std::string_view sealedBundle, const DeployExpectation& expect,
                         const ProgressFn& progress = {});

  // The deployment API. The JSON shapes are the gateway's (docs/protocols.md).
  Result<nlohmann::json> list();
  Result<nlohmann::json> status(const std::string& deploymentId);
  Result<nlohmann::json> events(const std::string& deploymentId, uint64_t after, int64_t waitMs);
  Result<ExecResult> exec(const std::string& deploymentId, const std::string& service,
                          const std::vector<std::string>& args);
  // A macaroon for the deployment, valid `ttlSeconds`, for `ops` ("read", "exec").
  Result<std::string> mintMacaroon(const std::string& deploymentId, int64_t ttlSeconds,
                                   const std::vector<std::string>& ops);

  struct LogOptions {
    int tail = 100;       // last N lines first; 0 = none
    bool follow = false;  // keep streaming new lines
    std::string service;  // "" = every service
  };
  // Streams NDJSON log lines to onLine until the stream ends or onLine returns false.
  // A line that is not a valid log object is skipped.
  Status logs(const std::string& deploymentId, const LogOptions& options,
              const std::function<bool(const LogLine&)>& onLine);

  // The gateway URL this client talks to.
  const std::string& url() const { return url_; }

 private:
  GatewayClient(std::string url, std::string basePath, const crypto::PublicKey& nodeKey,
                crypto::Identity publisher, GatewayClientOptions options);
  int64_t nowMs() const;
  // Signed request to `target`; a non-2xx answer becomes its Status, prefixed with what failed.
  Result<nlohmann::json> call(const std::string& method, const std::string& target,
                              const std::string& body = "", int* httpStatus = nullptr);
  Result<Receipt> checkReceipt(const nlohmann::json& j, const DeployExpectation& expect);
  Result<Receipt> upload(std::string_view sealed, const DeployExpectation& expect,
                         const ProgressFn& progress);

  std::string url_, basePath_;
  crypto::PublicKey nodeKey_;
  crypto::Identity publisher_;
  GatewayClientOptions options_;
  std::unique_ptr<net::HttpClient> http_;
};

}  // namespace mercato::publisher
