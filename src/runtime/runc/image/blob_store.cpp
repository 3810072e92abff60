#include "runtime/runc/image/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "runtime/runc/image/digest.hpp"

namespace mercato::runtime::image {
namespace fs = std::filesystem;

namespace {
std::string randomSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(rng() % 1000000);
}

Status writeAll(int fd, const char* data, size_t len, const std::string& path) {
  while (len > 0) {
    ssize_t w = ::write(fd, data, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return internalError("cannot write " + path + ": " + std::strerror(errno));
    }
    data += w;
    len -= static_cast<size_t>(w);
  }
  return Status::ok();
}
}  // namespace

Result<std::unique_ptr<BlobStore>> BlobStore::open(const std::string& root) {
  std::string dir = root + "/blobs";
  std::error_code ec;
  fs::create_directories(dir + "/sha256", ec);
  if (ec) return internalError("blob store: cannot create " + dir + "/sha256: " + ec.message());
  fs::remove_all(dir + "/tmp", ec);
  fs::create_directories(dir + "/tmp", ec);
  if (ec) return internalError("blob store: cannot create " + dir + "/tmp: " + ec.message());
  return std::unique_ptr<BlobStore>(new BlobStore(dir));
}

bool BlobStore::has(const std::string& digest) const {
  if (!validateDigest(digest).isOk()) return false;
  struct stat st {};
  return ::stat(path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string BlobStore::path(const std::string& digest) const {
  return root_ + "/sha256/" + digestHex(digest);
}

std::string BlobStore::tempPath() const { return root_ + "/tmp/" + randomSuffix(); }

Result<uint64_t> BlobStore::size(const std::string& digest) const {
  RETURN_IF_ERROR(validateDigest(digest));
  struct stat st {};
  if (::stat(path(digest).c_str(), &st) != 0) return notFound("blob " + digest + " is not stored");
  return static_cast<uint64_t>(st.st_size);
}

Result<std::string> BlobStore::put(std::string_view bytes) {
  std::string digest = sha256Digest(bytes);
  if (has(digest)) return digest;
  std::string tmp = tempPath();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return internalError("cannot create " + tmp + ": " + std::strerror(errno));
  Status st = writeAll(fd, bytes.data(), bytes.size(), tmp);
  if (st.isOk() && ::fsync(fd) != 0) st = internalError("fsync " + tmp + " failed");
  ::close(fd);
  if (st.isOk() && ::rename(tmp.c_str(), path(digest).c_str()) != 0)
    st = internalError("cannot rename " + tmp + ": " + std::strerror(errno));
  if (!st.isOk()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return digest;
}

Status BlobStore::putFile(const std::string& file, const std::string& digest,
                          int64_t expectedSize) {
  Status st = validateDigest(digest, "blob digest");
  if (st.isOk()) {
    auto got = sha256File(file);
    if (!got.isOk()) {
      st = got.status();
    } else if (expectedSize >= 0 && got->size != static_cast<uint64_t>(expectedSize)) {
      st = invalidArgument("blob " + digest + ": size is " + std::to_string(got->size) +
                           " bytes, the descriptor says " + std::to_string(expectedSize));
    } else if (got->digest != digest) {
      st =
          invalidArgument("blob " + digest + ": digest mismatch, content hashes to " + got->digest);
    }
  }
  if (st.isOk() && ::rename(file.c_str(), path(digest).c_str()) != 0)
    st = internalError("cannot rename " + file + " into the blob store: " + std::strerror(errno));
  if (!st.isOk()) ::unlink(file.c_str());
  return st;
}

Status BlobStore::importFile(const std::string& source, const std::string& digest,
                             int64_t expectedSize) {
  RETURN_IF_ERROR(validateDigest(digest, "blob digest"));
  if (has(digest)) return Status::ok();
  std::string tmp = tempPath();
  std::error_code ec;
  fs::copy_file(source, tmp, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return internalError("cannot copy blob " + digest + " from " + source + ": " + ec.message());
  }
  return putFile(tmp, digest, expectedSize);
}

Status BlobStore::verify(const std::string& digest) const {
  RETURN_IF_ERROR(validateDigest(digest));
  ASSIGN_OR_RETURN(FileDigest got, sha256File(path(digest)));
  if (got.digest != digest)
    return internalError("stored blob " + path(digest) + " is corrupt: hashes to " + got.digest);
  return Status::ok();
}

Result<std::string> BlobStore::read(const std::string& digest, uint64_t maxBytes) const {
  ASSIGN_OR_RETURN(uint64_t n, size(digest));
  if (n > maxBytes)
    return tooLarge("blob " + digest + " is " + std::to_string(n) + " bytes, more than " +
                    std::to_string(maxBytes));
  std::ifstream in(path(digest), std::ios::binary);
  std::string out(n, '\0');
  if (!in.read(out.data(), static_cast<std::streamsize>(n)))
    return internalError("cannot read " + path(digest));
  return out;
}

Status BlobStore::remove(const std::string& digest) {
  RETURN_IF_ERROR(validateDigest(digest));
  if (::unlink(path(digest).c_str()) != 0 && errno != ENOENT)
    return internalError("cannot delete " + path(digest) + ": " + std::strerror(errno));
  return Status::ok();
}

std::vector<std::pair<std::string, uint64_t>> BlobStore::list() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/sha256", ec)) {
    std::string d = "sha256:" + e.path().filename().string();
    if (!validateDigest(d).isOk()) continue;
    std::error_code ec2;
    auto n = e.file_size(ec2);
    if (!ec2) out.emplace_back(d, n);
  }
  return out;
}

}  // namespace mercato::runtime::image
