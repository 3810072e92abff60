// RegistryClient: the OCI distribution API (v2) over libcurl: manifests, blobs, push, and the
// registry auth flows (anonymous or basic-credential Bearer tokens, plain Basic).
//
// libcurl rather than our Beast client because real registries redirect blob GETs to CDN hosts
// over https with CA-signed certificates; curl follows them (without forwarding our Authorization
// header to another host) and verifies certificates with the system CA store.
//
// Every byte from the registry is untrusted: manifests are hashed and checked against the digest
// asked for and against Docker-Content-Digest; blobs are streamed to a temp file while hashing and
// only renamed into place after digest and size match. Errors name the registry, the repository
// and the digest, and decode the registry's {"errors":[{code,message}]} body.
//
// Thread-safety: all methods may be called concurrently; each request uses its own curl handle
// and a shared connection/DNS cache. Tokens are cached per (registry, scope) under a mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "runtime/runc/image/reference.hpp"

namespace mercato::runtime::image {

struct RegistryCredentials {
  std::string username, password;
};

struct RegistryClientConfig {
  std::map<std::string, RegistryCredentials> credentials;  // by registry host[:port]
  std::vector<std::string> insecureRegistries;             // plain http besides loopback
  // Connect timeout, whole-request timeout for manifests/small requests, and the stall timeout
  // for blob transfers (aborted when less than 1 byte/s flows for this long).
  std::chrono::milliseconds timeout{60'000};
  std::string userAgent = "mercato/0.1";
};

struct ManifestResponse {
  std::string mediaType;  // from Content-Type, or detected from the document
  std::string digest;     // sha256 of `bytes`
  std::string bytes;
};

// Called while a blob moves: bytes done so far and the expected total.
using TransferProgress = std::function<void(uint64_t done, uint64_t total)>;

class RegistryClient {
 public:
  static Result<std::unique_ptr<RegistryClient>> create(RegistryClientConfig config);
  virtual ~RegistryClient() = default;

  // Fetches the manifest (or index) named by ref.digest, else ref.tag. With a digest the bytes
  // must hash to it; a Docker-Content-Digest header must also match. 404 → kNotFound naming ref.
  virtual Result<ManifestResponse> getManifest(const Reference& ref) = 0;

  // Streams blob `digest` of ref's repository into `destination` (created or replaced). The
  // bytes go to a temp file beside it and are renamed into place only when sha256 and size match
  // (expectedSize; more bytes than announced abort the transfer). Nothing is left on failure.
  virtual Status fetchBlob(const Reference& repo, const std::string& digest, uint64_t expectedSize,
                           const std::string& destination, TransferProgress progress = {}) = 0;

  // HEAD /v2/<name>/blobs/<digest>.
  virtual Result<bool> blobExists(const Reference& repo, const std::string& digest) = 0;
  // Uploads the file `path` as blob `digest` (monolithic POST + PUT). Skipped if it exists.
  virtual Status pushBlob(const Reference& repo, const std::string& digest,
                          const std::string& path) = 0;
  // PUT /v2/<name>/manifests/<tag>. Returns the manifest digest.
  virtual Result<std::string> pushManifest(const Reference& repo, const std::string& tag,
                                           const std::string& mediaType,
                                           const std::string& bytes) = 0;

  // Number of HTTP requests sent (including auth and redirects followed), for tests and metrics.
  virtual uint64_t requestCount() const = 0;
};

}  // namespace mercato::runtime::image
