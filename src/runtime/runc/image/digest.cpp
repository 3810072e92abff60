#include "runtime/runc/image/digest.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/strings.hpp"

namespace mercato::runtime::image {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) {
  if (size) EVP_DigestUpdate(ctx_->md, data, size);
}

std::string Sha256::finishDigest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  return "sha256:" + toHex(std::span<const uint8_t>(out, len));
}

std::string sha256Digest(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.finishDigest();
}

Result<FileDigest> sha256File(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return internalError("cannot open " + path + ": " + std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  FileDigest out;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return internalError("cannot read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    out.size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  out.digest = h.finishDigest();
  return out;
}

Status validateDigest(std::string_view digest, std::string_view what) {
  constexpr std::string_view kPrefix = "sha256:";
  auto bad = [&](const std::string& why) {
    std::string shown(digest.substr(0, 80));
    return invalidArgument(std::string(what) + " \"" + shown + "\": " + why);
  };
  if (digest.substr(0, kPrefix.size()) != kPrefix) {
    auto colon = digest.find(':');
    if (colon != std::string_view::npos && colon > 0)
      return bad("unsupported digest algorithm \"" + std::string(digest.substr(0, colon)) +
                 "\" (only sha256 is accepted)");
    return bad("expected sha256:<64 hex characters>");
  }
  auto hex = digest.substr(kPrefix.size());
  if (hex.size() != 64) return bad("expected 64 hex characters after sha256:");
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return bad("expected lowercase hex after sha256:");
  return Status::ok();
}

std::string digestHex(std::string_view digest) { return std::string(digest.substr(7)); }

}  // namespace mercato::runtime::image
