// SHA-256 content digests in the OCI form "sha256:<64 lowercase hex>".
//
// Sha256 is an incremental hasher (OpenSSL EVP) for streaming blobs; the free functions hash
// strings and files and validate digest strings that come from manifests or the network.
//
// Thread-safety: Sha256 is a value type used by one thread; the free functions are pure.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace mercato::runtime::image {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // "sha256:<hex>". The hasher must not be used afterwards.
  std::string finishDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// "sha256:<hex>" of `bytes`.
std::string sha256Digest(std::string_view bytes);
// Hashes a file in 1 MiB reads; also reports its size.
struct FileDigest {
  std::string digest;
  uint64_t size = 0;
};
Result<FileDigest> sha256File(const std::string& path);

// OK when `digest` is "sha256:" + 64 lowercase hex characters (the only algorithm we accept).
// The error names `what` ("layer digest", "manifest digest") and the offending value.
Status validateDigest(std::string_view digest, std::string_view what = "digest");
// The hex part of a valid digest. REQUIRES: validateDigest(digest).isOk()
std::string digestHex(std::string_view digest);

}  // namespace mercato::runtime::image
