#include "publisher/gateway_client.hpp"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/strings.hpp"
#include "crypto/address.hpp"
#include "net/client.hpp"
#include "publisher/gateway_auth.hpp"

namespace mercato::publisher {

using nlohmann::json;

namespace {

constexpr std::string_view kApi = "/gateway/v1";

std::string sha256Hex(std::string_view data) {
  std::array<uint8_t, crypto_hash_sha256_BYTES> h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return toHex(std::span<const uint8_t>(h));
}

std::string deploymentPath(const std::string& id) {
  return std::string(kApi) + "/deployments/" + net::urlEncode(id);
}

// A 4xx that retrying cannot fix (everything but conflict, timeout and rate limiting).
bool permanentClientError(int status) {
  return status >= 400 && status < 500 && status != 409 && status != 408 && status != 429;
}

}  // namespace

Result<std::unique_ptr<GatewayClient>> GatewayClient::create(
    const std::string& gatewayUrl, const crypto::PublicKey& providerNodeKey,
    const crypto::Identity& publisher, GatewayClientOptions options) {
  std::string url = gatewayUrl;
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto scheme = url.find("://");
  if (scheme == std::string::npos ||
      (url.substr(0, scheme) != "http" && url.substr(0, scheme) != "https")) {
    return invalidArgument("gateway URL '" + gatewayUrl +
                           "': expected http://host:port or https://host:port");
  }
  auto slash = url.find('/', scheme + 3);
  std::string basePath = slash == std::string::npos ? "" : url.substr(slash);
  if (options.chunkBytes == 0) return invalidArgument("gateway client: chunkBytes must be > 0");
  std::unique_ptr<GatewayClient> c(
      new GatewayClient(url, basePath, providerNodeKey, publisher.clone(), std::move(options)));
  net::ClientOptions co;
  co.timeout = c->options_.timeout;
  co.pinnedKey = providerNodeKey;
  auto http = net::HttpClient::create(url, co);
  if (!http.isOk()) return http.status().withContext("gateway " + gatewayUrl);
  c->http_ = std::move(http).value();
  return c;
}

GatewayClient::GatewayClient(std::string url, std::string basePath,
                             const crypto::PublicKey& nodeKey, crypto::Identity publisher,
                             GatewayClientOptions options)
    : url_(std::move(url)),
      basePath_(std::move(basePath)),
      nodeKey_(nodeKey),
      publisher_(std::move(publisher)),
      options_(std::move(options)) {}

GatewayClient::~GatewayClient() = default;

int64_t GatewayClient::nowMs() const {
  if (options_.clock) return options_.clock->nowMillis();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<json> GatewayClient::call(const std::string& method, const std::string& target,
                                 const std::string& body, int* httpStatus) {
  net::Headers headers{
      {"Authorization", signRequest(publisher_, method, basePath_ + target, body, nowMs())},
      {"Accept", "application/json"}};
  if (!body.empty()) {
    headers["Content-Type"] = body.front() == '{' ? "application/json" : "application/octet-stream";
  }
  const std::string what = "gateway " + url_ + ": " + method + " " + target;
  auto r = http_->request(method, target, body, headers);
  if (!r.isOk()) return r.status().withContext(what);
  if (httpStatus) *httpStatus = r->status;
  if (r->status < 200 || r->status >= 300) {
    return net::statusFromErrorResponse(r->status, r->body).withContext(what);
  }
  if (r->body.empty()) return json();
  json j = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return unavailable(what + ": reply is not JSON");
  return j;
}

Result<Receipt> GatewayClient::checkReceipt(const json& j, const DeployExpectation& expect) {
  auto r = receiptFromJson(j);
  if (!r.isOk()) return r.status().withContext("gateway " + url_);
  RETURN_IF_ERROR(verifyReceipt(*r, nodeKey_));
  const std::string who = "receipt for deployment '" + r->deploymentId + "'";
  if (r->deploymentId.empty()) return permissionDenied("receipt: empty deploymentId");
  if (r->escrowId != expect.escrowId)
    return permissionDenied(who + " names escrow " + r->escrowId + ", expected " + expect.escrowId);
  if (r->publisher != publisher_.address())
    return permissionDenied(who + " names publisher " + r->publisher + ", expected " +
                            publisher_.address());
  if (!expect.providerAddress.empty() && r->provider != expect.providerAddress)
    return permissionDenied(who + " names provider " + r->provider + ", expected " +
                            expect.providerAddress);
  return r;
}

Result<Receipt> GatewayClient::deploy(std::string_view sealed, const DeployExpectation& expect,
                                      const ProgressFn& progress) {
  if (expect.escrowId.empty()) return invalidArgument("deploy: the expected escrow id is empty");
  if (sealed.size() > options_.smallBundleLimit) return upload(sealed, expect, progress);
  if (progress) progress(0, sealed.size());
  ASSIGN_OR_RETURN(json j, call("POST", std::string(kApi) + "/deployments", std::string(sealed)));
  if (progress) progress(sealed.size(), sealed.size());
  return checkReceipt(j, expect);
}

Result<Receipt> GatewayClient::upload(std::string_view sealed, const DeployExpectation& expect,
                                      const ProgressFn& progress) {
  const uint64_t total = sealed.size();
  const std::string uploads = std::string(kApi) + "/uploads";
  ASSIGN_OR_RETURN(json started, call("POST", uploads,
                                      json{{"size", total}, {"sha256", sha256Hex(sealed)}}.dump()));
  if (!started.is_object() || !started.contains("uploadId") || !started["uploadId"].is_string())
    return unavailable("gateway " + url_ + ": POST " + uploads + ": reply has no uploadId");
  const std::string id = started["uploadId"].get<std::string>();
  const std::string path = uploads + "/" + net::urlEncode(id);
  size_t chunk = options_.chunkBytes;
  if (started.contains("maxChunk") && started["maxChunk"].is_number_unsigned() &&
      started["maxChunk"].get<uint64_t>() > 0) {
    chunk = std::min<uint64_t>(chunk, started["maxChunk"].get<uint64_t>());
  }
  uint64_t offset = 0;
  if (started.contains("offset") && started["offset"].is_number_unsigned())
    offset = std::min<uint64_t>(started["offset"].get<uint64_t>(), total);
  if (progress) progress(offset, total);

  // Reads the gateway's offset back after a failed chunk.
  auto resumeOffset = [&]() -> Result<uint64_t> {
    ASSIGN_OR_RETURN(json st, call("GET", path));
    if (!st.is_object() || !st.contains("offset") || !st["offset"].is_number_unsigned())
      return unavailable("gateway " + url_ + ": GET " + path + ": reply has no offset");
    return st["offset"].get<uint64_t>();
  };

  int failures = 0;
  Status last;
  while (offset < total) {
    const uint64_t n = std::min<uint64_t>(chunk, total - offset);
    int http = 0;
    auto put = call("PUT", path + "?offset=" + std::to_string(offset),
                    std::string(sealed.substr(offset, n)), &http);
    if (put.isOk()) {
      if (!put->is_object() || !(*put).contains("offset") ||
          !(*put)["offset"].is_number_unsigned() || (*put)["offset"].get<uint64_t>() > total ||
          (*put)["offset"].get<uint64_t>() <= offset) {
        return unavailable("gateway " + url_ + ": PUT " + path + ": bad offset in reply " +
                           put->dump());
      }
      offset = (*put)["offset"].get<uint64_t>();
      failures = 0;
      if (progress) progress(offset, total);
      continue;
    }
    if (permanentClientError(http)) return put.status();
    last = put.status();
    if (++failures > options_.maxChunkRetries) {
      return Status(Code::kUnavailable,
                    "upload " + id + " to " + url_ + " stopped at byte " + std::to_string(offset) +
                        " of " + std::to_string(total) + " after " + std::to_string(failures) +
                        " failed attempts; last: " + last.message());
    }
    if (options_.retryBackoff.count() > 0)
      std::this_thread::sleep_for(options_.retryBackoff * failures);
    auto resumed = resumeOffset();
    if (!resumed.isOk()) {
      if (resumed.status().code() == Code::kNotFound) return resumed.status();
      last = resumed.status();
      continue;  // retry the same chunk; it counts against the same budget
    }
    if (*resumed > total)
      return unavailable("gateway " + url_ + ": upload " + id + " reports offset " +
                         std::to_string(*resumed) + " beyond the bundle size");
    offset = *resumed;
    if (progress) progress(offset, total);
  }
  ASSIGN_OR_RETURN(json receipt, call("POST", path + "/deploy"));
  return checkReceipt(receipt, expect);
}

Result<json> GatewayClient::list() { return call("GET", std::string(kApi) + "/deployments"); }

Result<json> GatewayClient::status(const std::string& deploymentId) {
  return call("GET", deploymentPath(deploymentId));
}

Result<json> GatewayClient::events(const std::string& deploymentId, uint64_t after,
                                   int64_t waitMs) {
  const std::string target = deploymentPath(deploymentId) +
                             "/events?after=" + std::to_string(after) +
                             "&wait=" + std::to_string(waitMs);
  if (waitMs + 5'000 < options_.timeout.count()) return call("GET", target);
  // A long poll outlives the normal timeout: use a connection of its own.
  net::ClientOptions co;
  co.timeout = std::chrono::milliseconds(waitMs + 10'000);
  co.pinnedKey = nodeKey_;
  ASSIGN_OR_RETURN(auto longPoll, net::HttpClient::create(url_, co));
  std::swap(http_, longPoll);
  auto r = call("GET", target);
  std::swap(http_, longPoll);
  return r;
}

Result<ExecResult> GatewayClient::exec(const std::string& deploymentId, const std::string& service,
                                       const std::vector<std::string>& args) {
  const std::string target = deploymentPath(deploymentId) + "/exec";
  ASSIGN_OR_RETURN(json j, call("POST", target, json{{"service", service}, {"args", args}}.dump()));
  if (!j.is_object() || !j.contains("exitCode") || !j["exitCode"].is_number_integer())
    return unavailable("gateway " + url_ + ": POST " + target + ": reply has no exitCode");
  ExecResult r;
  r.exitCode = j["exitCode"].get<int>();
  if (j.contains("stdout") && j["stdout"].is_string()) r.stdoutText = j["stdout"];
  if (j.contains("stderr") && j["stderr"].is_string()) r.stderrText = j["stderr"];
  return r;
}

Result<std::string> GatewayClient::mintMacaroon(const std::string& deploymentId, int64_t ttlSeconds,
                                                const std::vector<std::string>& ops) {
  const std::string target = deploymentPath(deploymentId) + "/macaroons";
  ASSIGN_OR_RETURN(json j,
                   call("POST", target, json{{"ttlSeconds", ttlSeconds}, {"ops", ops}}.dump()));
  if (!j.is_object() || !j.contains("macaroon") || !j["macaroon"].is_string())
    return unavailable("gateway " + url_ + ": POST " + target + ": reply has no macaroon");
  return j["macaroon"].get<std::string>();
}

Status GatewayClient::logs(const std::string& deploymentId, const LogOptions& o,
                           const std::function<bool(const LogLine&)>& onLine) {
  std::string target = deploymentPath(deploymentId) + "/logs?tail=" + std::to_string(o.tail);
  if (o.follow) target += "&follow=1";
  if (!o.service.empty()) target += "&service=" + net::urlEncode(o.service);
  net::ClientOptions co;
  co.timeout = o.follow ? options_.followIdleTimeout : options_.timeout;
  co.pinnedKey = nodeKey_;
  auto http = net::HttpClient::create(url_, co);
  if (!http.isOk()) return http.status();
  net::Headers headers{
      {"Authorization", signRequest(publisher_, "GET", basePath_ + target, "", nowMs())},
      {"Accept", "application/x-ndjson"}};
  std::string pending;
  bool stopped = false;
  auto deliver = [&](std::string_view line) {
    line = trimSpace(line);
    if (line.empty()) return true;  // heartbeat
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return true;
    LogLine l;
    l.instance = j.value("instance", "");
    l.stream = j.value("stream", "");
    l.text = j.value("text", "");
    if (!onLine(l)) stopped = true;
    return !stopped;
  };
  Status s = (*http)->stream(
      target,
      [&](std::string_view data) {
        pending.append(data);
        size_t start = 0;
        for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          if (!deliver(std::string_view(pending).substr(start, nl - start))) return false;
        }
        pending.erase(0, start);
        return true;
      },
      headers);
  if (!s.isOk()) return s.withContext("gateway " + url_ + ": GET " + target);
  if (!stopped && !pending.empty()) deliver(pending);
  return Status::ok();
}

}  // namespace mercato::publisher
