#include "runtime/runc/image/image_store.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "common/strings.hpp"
#include "runtime/runc/image/blob_store.hpp"
#include "runtime/runc/image/digest.hpp"
#include "runtime/runc/image/oci_layout.hpp"
#include "runtime/runc/image/unpack.hpp"

namespace mercato::runtime::image {
namespace fs = std::filesystem;
namespace {

std::string randomName() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static std::atomic<uint64_t> n{0};
  return std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" +
         std::to_string(rng() % 100000);
}

// Decodes the \ooo escapes of /proc/self/mountinfo paths.
std::string unescapeMount(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out += static_cast<char>(v);
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool isMountPoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint ...
    size_t pos = 0;
    for (int f = 0; f < 4 && pos != std::string::npos; ++f) pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    size_t end = line.find(' ', pos + 1);
    if (unescapeMount(std::string_view(line).substr(pos + 1, end - pos - 1)) == path) return true;
  }
  return false;
}

// Mount points at or below `dir`, deepest first (so they can be unmounted in this order).
std::vector<std::string> mountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t pos = 0;
    for (int f = 0; f < 4 && pos != std::string::npos; ++f) pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    size_t end = line.find(' ', pos + 1);
    std::string mp = unescapeMount(std::string_view(line).substr(pos + 1, end - pos - 1));
    if (mp == dir || mp.rfind(dir + "/", 0) == 0) out.push_back(mp);
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

// `path` relative to `base` when it lies inside it, else `path` itself.
std::string relativeTo(const std::string& base, const std::string& path) {
  if (path.rfind(base + "/", 0) == 0) return path.substr(base.size() + 1);
  return path;
}

std::string absolutePath(const std::string& p) {
  std::error_code ec;
  auto abs = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal().string() : abs.string();
}

// Runs argv and waits; returns the exit status (or -1).
int runCommand(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

template <typename F>
Status dbTry(const std::string& what, F&& f) {
  try {
    f();
    return Status::ok();
  } catch (const std::exception& e) {
    return internalError("image store database: " + what + ": " + e.what());
  }
}

// Where a blob comes from during install: the registry or a layout directory.
using BlobFetcher = std::function<Status(const Descriptor&)>;

class ImageStoreImpl final : public ImageStore {
 public:
  ImageStoreImpl(ImageStoreConfig config, std::unique_ptr<BlobStore> blobs,
                 std::unique_ptr<RegistryClient> client, std::unique_ptr<SQLite::Database> db)
      : config_(std::move(config)),
        blobs_(std::move(blobs)),
        client_(std::move(client)),
        db_(std::move(db)) {}

  Status init() {
    RETURN_IF_ERROR(dbTry("schema", [&] {
      db_->exec("PRAGMA journal_mode=WAL");
      db_->exec("PRAGMA synchronous=NORMAL");
      db_->exec("PRAGMA busy_timeout=5000");
      db_->exec(
          "CREATE TABLE IF NOT EXISTS images(digest TEXT PRIMARY KEY, config_digest TEXT NOT "
          "NULL, config TEXT NOT NULL, compressed_bytes INTEGER NOT NULL, unpacked_bytes "
          "INTEGER NOT NULL, last_used_ms INTEGER NOT NULL, use_seq INTEGER NOT NULL);"
          "CREATE TABLE IF NOT EXISTS refs(name TEXT PRIMARY KEY, digest TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS image_blobs(image TEXT NOT NULL, blob TEXT NOT NULL, size "
          "INTEGER NOT NULL, PRIMARY KEY(image, blob));"
          "CREATE INDEX IF NOT EXISTS image_blobs_blob ON image_blobs(blob);"
          "CREATE TABLE IF NOT EXISTS pins(instance_dir TEXT PRIMARY KEY, image TEXT NOT NULL);");
      SQLite::Statement q(*db_, "SELECT COALESCE(MAX(use_seq), 0) FROM images");
      if (q.executeStep()) useSeq_ = q.getColumn(0).getInt64();
    }));
    // Crash leftovers: temp unpacks, rootfs dirs without a row, pins of vanished instances,
    // partial downloads, blobs no image references.
    std::error_code ec;
    fs::create_directories(rootfsDir(), ec);
    fs::remove_all(config_.root + "/tmp", ec);
    fs::create_directories(config_.root + "/tmp", ec);
    std::set<std::string> known;
    std::set<std::string> referenced;
    std::vector<std::string> stalePins;
    RETURN_IF_ERROR(dbTry("recovery scan", [&] {
      SQLite::Statement q(*db_, "SELECT digest FROM images");
      while (q.executeStep()) known.insert(digestHex(q.getColumn(0).getString()));
      SQLite::Statement b(*db_, "SELECT DISTINCT blob FROM image_blobs");
      while (b.executeStep()) referenced.insert(b.getColumn(0).getString());
      SQLite::Statement p(*db_, "SELECT instance_dir FROM pins");
      while (p.executeStep()) {
        std::string dir = p.getColumn(0).getString();
        if (!fs::exists(dir)) stalePins.push_back(dir);
      }
      for (const auto& d : stalePins) {
        SQLite::Statement del(*db_, "DELETE FROM pins WHERE instance_dir = ?");
        del.bind(1, d);
        del.exec();
      }
    }));
    for (const auto& e : fs::directory_iterator(rootfsDir(), ec)) {
      std::string name = e.path().filename().string();
      if (!known.count(name)) {
        spdlog::info("image store: removing incomplete rootfs {}", e.path().string());
        fs::remove_all(e.path(), ec);
      }
    }
    for (const auto& e : fs::directory_iterator(config_.root + "/blobs/sha256", ec)) {
      std::string name = e.path().filename().string();
      if (!referenced.count("sha256:" + name)) fs::remove(e.path(), ec);
    }
    return Status::ok();
  }

  Result<Image> pull(const std::string& reference,
                     std::function<void(const PullProgress&)> progress) override {
    ASSIGN_OR_RETURN(Reference ref, parseReference(reference));
    std::string name = ref.toString();
    if (auto hit = lookupRef(name); hit.isOk()) return touchAndReturn(std::move(hit).value());
    auto refLock = lockFor("ref " + name);
    std::lock_guard g1(*refLock);
    if (auto hit = lookupRef(name); hit.isOk()) return touchAndReturn(std::move(hit).value());

    ASSIGN_OR_RETURN(ManifestResponse top, client_->getManifest(ref));
    ManifestResponse chosen = std::move(top);
    if (isIndexMediaType(chosen.mediaType)) {
      auto index = parseIndex(chosen.bytes);
      if (!index.isOk())
        return index.status().withContext("registry " + ref.registry + ": " + name);
      auto desc = selectPlatform(*index, platform());
      if (!desc.isOk()) return desc.status().withContext(name);
      Reference byDigest = ref;
      byDigest.tag.clear();
      byDigest.digest = desc->digest;
      ASSIGN_OR_RETURN(chosen, client_->getManifest(byDigest));
      if (chosen.bytes.size() != desc->size)
        return invalidArgument(name + ": manifest " + desc->digest + " is " +
                               std::to_string(chosen.bytes.size()) + " bytes, the index declares " +
                               std::to_string(desc->size));
    }
    if (!isManifestMediaType(chosen.mediaType))
      return invalidArgument("registry " + ref.registry + ": " + name + ": media type \"" +
                             chosen.mediaType + "\" is not an image manifest or index");
    BlobFetcher fetch = [&](const Descriptor& d) {
      TransferProgress tp;
      if (progress)
        tp = [&, digest = d.digest](uint64_t done, uint64_t total) {
          progress(PullProgress{digest, done, total});
        };
      return client_->fetchBlob(ref, d.digest, d.size, blobs_->path(d.digest), tp);
    };
    return installOrReuse(chosen.bytes, chosen.digest, name, fetch);
  }

  Result<Image> importLayout(const std::string& path, const std::string& refName) override {
    std::error_code ec;
    std::string dir = path;
    std::string extracted;
    struct Cleanup {
      std::string dir;
      ~Cleanup() {
        std::error_code e;
        if (!dir.empty()) fs::remove_all(dir, e);
      }
    } cleanup;
    if (fs::is_regular_file(path, ec)) {
      extracted = config_.root + "/tmp/import-" + randomName();
      fs::create_directories(extracted, ec);
      cleanup.dir = extracted;
      UnpackBudget budget;
      budget.maxBytes = config_.maxImageBytes;
      Status st = applyLayer(path, extracted, budget, "OCI layout tarball " + path);
      if (!st.isOk()) return st;
      dir = extracted;
    } else if (!fs::is_directory(path, ec)) {
      return notFound("OCI layout " + path + " does not exist");
    }
    ASSIGN_OR_RETURN(Descriptor desc, resolveLayoutManifest(dir, refName, platform()));
    std::string what = "OCI layout " + path;
    std::string name;
    std::string wanted = refName;
    if (wanted.empty()) {
      auto it = desc.annotations.find(std::string(kRefNameAnnotation));
      if (it != desc.annotations.end()) wanted = it->second;
    }
    if (!wanted.empty()) {
      auto ref = parseReference(wanted);
      if (ref.isOk())
        name = ref->toString();
      else if (!refName.empty())
        return ref.status();
    }
    std::string manifestPath = dir + "/blobs/sha256/" + digestHex(desc.digest);
    if (desc.size > kMaxManifestBytes) return tooLarge(what + ": manifest too large");
    std::ifstream in(manifestPath, std::ios::binary);
    if (!in) return invalidArgument(what + ": manifest blob " + desc.digest + " is missing");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (sha256Digest(bytes) != desc.digest || bytes.size() != desc.size)
      return invalidArgument(what + ": manifest blob " + desc.digest +
                             " does not match its digest or size");
    BlobFetcher fetch = [&](const Descriptor& d) {
      std::string src = dir + "/blobs/sha256/" + digestHex(d.digest);
      if (!fs::exists(src)) return invalidArgument(what + ": blob " + d.digest + " is missing");
      Status st = blobs_->importFile(src, d.digest, static_cast<int64_t>(d.size));
      return st.isOk() ? st : st.withContext(what);
    };
    return installOrReuse(bytes, desc.digest, name, fetch);
  }

  Result<Image> find(const std::string& referenceOrDigest) override {
    if (startsWith(referenceOrDigest, "sha256:")) {
      RETURN_IF_ERROR(validateDigest(referenceOrDigest, "image digest"));
      return lookupDigest(referenceOrDigest, "");
    }
    ASSIGN_OR_RETURN(Reference ref, parseReference(referenceOrDigest));
    return lookupRef(ref.toString());
  }

  Result<std::string> prepareRootfs(const Image& image, const std::string& instanceDirIn,
                                    const RootfsOptions& options) override {
    std::string instanceDir = absolutePath(instanceDirIn);
    std::string lower = options.lowerDir.empty() ? rootfsDir() + "/" + digestHex(image.digest)
                                                 : absolutePath(options.lowerDir);
    std::string layers = options.layerDir.empty() ? instanceDir : absolutePath(options.layerDir);
    std::string rootfs = instanceDir + "/rootfs";
    {
      std::lock_guard lock(mu_);
      ASSIGN_OR_RETURN(Image img, lookupDigestLocked(image.digest, ""));
      (void)img;
      RETURN_IF_ERROR(dbTry("pin", [&] {
        SQLite::Statement q(*db_, "INSERT OR REPLACE INTO pins(instance_dir, image) VALUES(?, ?)");
        q.bind(1, instanceDir);
        q.bind(2, image.digest);
        q.exec();
      }));
      touchLocked(image.digest);
    }
    if (isMountPoint(rootfs)) return rootfs;  // re-adoption of a live instance
    std::error_code ec;
    if (fs::exists(instanceDir + "/.copied", ec)) return rootfs;
    for (const std::string& dir : {rootfs, layers + "/upper", layers + "/work"}) {
      fs::create_directories(dir, ec);
      if (ec) return internalError("cannot create " + dir + ": " + ec.message());
    }
    // The merged root takes its owner from the upper dir: the container's root must own it.
    struct stat lowerRoot {};
    if (::stat(lower.c_str(), &lowerRoot) == 0)
      ::chmod((layers + "/upper").c_str(), lowerRoot.st_mode & 07777);
    for (const std::string& dir : {layers + "/upper", layers + "/work"})
      if (::chown(dir.c_str(), options.rootUid, options.rootGid) != 0)
        return internalError("cannot chown " + dir + ": " + std::strerror(errno));
    if (config_.rootfsMode != RootfsMode::kCopy) {
      Status st = mountOverlay(instanceDir, relativeTo(instanceDir, lower),
                               relativeTo(instanceDir, layers), rootfs);
      if (st.isOk()) return rootfs;
      if (config_.rootfsMode == RootfsMode::kOverlay) return st;
      spdlog::warn("image store: {}; copying the rootfs instead", st.message());
    }
    if (options.rootUid != 0 || options.rootGid != 0)
      return failedPrecondition(
          "copying a rootfs for a user namespace is not supported: overlayfs is required");
    std::string tmp = instanceDir + "/rootfs.copying";
    fs::remove_all(tmp, ec);
    if (runCommand({"cp", "-a", lower, tmp}) != 0) {
      fs::remove_all(tmp, ec);
      return internalError("cannot copy rootfs " + lower + " to " + tmp);
    }
    fs::remove_all(rootfs, ec);
    fs::rename(tmp, rootfs, ec);
    if (ec) return internalError("cannot rename " + tmp + ": " + ec.message());
    std::ofstream(instanceDir + "/.copied").put('\n');
    return rootfs;
  }

  Status releaseRootfs(const std::string& instanceDirIn) override {
    std::string instanceDir = absolutePath(instanceDirIn);
    // The rootfs first (it holds the layers below it), then the lower and the disk.
    for (int round = 0; round < 8; ++round) {
      auto mounts = mountsUnder(instanceDir);
      if (mounts.empty()) break;
      std::string rootfs = instanceDir + "/rootfs";
      if (std::find(mounts.begin(), mounts.end(), rootfs) != mounts.end()) mounts = {rootfs};
      for (const auto& mp : mounts) {
        if (::umount2(mp.c_str(), 0) != 0) {
          if (errno == EBUSY) {
            ::umount2(mp.c_str(), MNT_DETACH);
          } else if (errno != EINVAL) {
            return internalError("cannot unmount " + mp + ": " + std::strerror(errno));
          }
        }
      }
    }
    if (auto left = mountsUnder(instanceDir); !left.empty())
      return internalError(left.front() + " is still mounted; " + instanceDir + " is kept");
    std::error_code ec;
    fs::remove_all(instanceDir, ec);
    if (ec) return internalError("cannot delete " + instanceDir + ": " + ec.message());
    std::lock_guard lock(mu_);
    return dbTry("unpin", [&] {
      SQLite::Statement q(*db_, "DELETE FROM pins WHERE instance_dir = ?");
      q.bind(1, instanceDir);
      q.exec();
    });
  }

  Result<std::vector<Image>> list() override {
    std::lock_guard lock(mu_);
    std::vector<std::string> digests;
    RETURN_IF_ERROR(dbTry("list", [&] {
      SQLite::Statement q(*db_,
                          "SELECT digest FROM images ORDER BY last_used_ms DESC, use_seq DESC");
      while (q.executeStep()) digests.push_back(q.getColumn(0).getString());
    }));
    std::vector<Image> out;
    for (const auto& d : digests) {
      auto img = lookupDigestLocked(d, "");
      if (img.isOk()) out.push_back(std::move(img).value());
    }
    return out;
  }

  Status remove(const std::string& digest) override {
    RETURN_IF_ERROR(validateDigest(digest, "image digest"));
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(lookupDigestLocked(digest, "").status());
    ASSIGN_OR_RETURN(auto pins, pinsOfLocked(digest));
    if (!pins.empty())
      return failedPrecondition(
          "image " + digest + " is in use by " + pins.front() +
          (pins.size() > 1 ? " and " + std::to_string(pins.size() - 1) + " more instance(s)"
                           : std::string()));
    return removeImageLocked(digest);
  }

  uint64_t cacheBytes() override {
    std::lock_guard lock(mu_);
    return cacheBytesLocked();
  }

  uint64_t registryRequests() const override { return client_->requestCount(); }

 private:
  std::string rootfsDir() const { return config_.root + "/rootfs"; }
  Platform platform() const { return Platform{config_.os, config_.architecture, config_.variant}; }

  int64_t nowMs() const {
    auto t = config_.clock ? config_.clock->now() : std::chrono::system_clock::now();
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }

  std::shared_ptr<std::mutex> lockFor(const std::string& key) {
    std::lock_guard lock(locksMu_);
    auto& m = keyLocks_[key];
    if (!m) m = std::make_shared<std::mutex>();
    return m;
  }

  Result<Image> touchAndReturn(Image img) {
    std::lock_guard lock(mu_);
    touchLocked(img.digest);
    return img;
  }

  void touchLocked(const std::string& digest) {
    (void)dbTry("touch", [&] {
      SQLite::Statement q(*db_, "UPDATE images SET last_used_ms = ?, use_seq = ? WHERE digest = ?");
      q.bind(1, static_cast<int64_t>(nowMs()));
      q.bind(2, static_cast<int64_t>(++useSeq_));
      q.bind(3, digest);
      q.exec();
    });
  }

  Result<Image> lookupRef(const std::string& name) {
    std::lock_guard lock(mu_);
    std::string digest;
    RETURN_IF_ERROR(dbTry("ref lookup", [&] {
      SQLite::Statement q(*db_, "SELECT digest FROM refs WHERE name = ?");
      q.bind(1, name);
      if (q.executeStep()) digest = q.getColumn(0).getString();
    }));
    if (digest.empty()) return notFound("image " + name + " is not in the cache");
    return lookupDigestLocked(digest, name);
  }

  Result<Image> lookupDigest(const std::string& digest, const std::string& name) {
    std::lock_guard lock(mu_);
    return lookupDigestLocked(digest, name);
  }

  Result<Image> lookupDigestLocked(const std::string& digest, const std::string& name) {
    Image img;
    bool found = false;
    std::string configBytes;
    RETURN_IF_ERROR(dbTry("image lookup", [&] {
      SQLite::Statement q(*db_,
                          "SELECT config_digest, config, compressed_bytes, unpacked_bytes FROM "
                          "images WHERE digest = ?");
      q.bind(1, digest);
      if (!q.executeStep()) return;
      found = true;
      img.digest = digest;
      img.configDigest = q.getColumn(0).getString();
      configBytes = q.getColumn(1).getString();
      img.compressedBytes = static_cast<uint64_t>(q.getColumn(2).getInt64());
      img.unpackedBytes = static_cast<uint64_t>(q.getColumn(3).getInt64());
      if (name.empty()) {
        SQLite::Statement r(*db_, "SELECT name FROM refs WHERE digest = ? ORDER BY name LIMIT 1");
        r.bind(1, digest);
        if (r.executeStep()) img.reference = r.getColumn(0).getString();
      } else {
        img.reference = name;
      }
    }));
    if (!found) return notFound("image " + digest + " is not in the cache");
    auto cfg = parseImageConfig(configBytes);
    if (!cfg.isOk()) return cfg.status().withContext("cached config of " + digest);
    img.config = std::move(cfg).value();
    img.rootfsPath = rootfsDir() + "/" + digestHex(digest);
    return img;
  }

  Result<std::vector<std::string>> pinsOfLocked(const std::string& digest) {
    std::vector<std::string> out;
    RETURN_IF_ERROR(dbTry("pins", [&] {
      SQLite::Statement q(*db_, "SELECT instance_dir FROM pins WHERE image = ?");
      q.bind(1, digest);
      while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    }));
    return out;
  }

  uint64_t cacheBytesLocked() {
    uint64_t total = 0;
    (void)dbTry("cache size", [&] {
      SQLite::Statement b(*db_,
                          "SELECT COALESCE(SUM(size), 0) FROM (SELECT blob, MAX(size) AS size FROM "
                          "image_blobs GROUP BY blob)");
      if (b.executeStep()) total += static_cast<uint64_t>(b.getColumn(0).getInt64());
      SQLite::Statement u(*db_, "SELECT COALESCE(SUM(unpacked_bytes), 0) FROM images");
      if (u.executeStep()) total += static_cast<uint64_t>(u.getColumn(0).getInt64());
    });
    return total;
  }

  // Deletes blobs in `candidates` that no image references and no pull is using.
  void dropUnreferencedBlobsLocked(const std::vector<std::string>& candidates) {
    for (const auto& b : candidates) {
      if (inflightBlobs_.count(b)) continue;
      bool used = true;
      (void)dbTry("blob refs", [&] {
        SQLite::Statement q(*db_, "SELECT 1 FROM image_blobs WHERE blob = ? LIMIT 1");
        q.bind(1, b);
        used = q.executeStep();
      });
      if (!used) (void)blobs_->remove(b);
    }
  }

  Status removeImageLocked(const std::string& digest) {
    std::vector<std::string> blobsOf;
    RETURN_IF_ERROR(dbTry("remove image", [&] {
      SQLite::Statement q(*db_, "SELECT blob FROM image_blobs WHERE image = ?");
      q.bind(1, digest);
      while (q.executeStep()) blobsOf.push_back(q.getColumn(0).getString());
      SQLite::Transaction tx(*db_);
      for (const char* sql :
           {"DELETE FROM refs WHERE digest = ?", "DELETE FROM image_blobs WHERE image = ?",
            "DELETE FROM images WHERE digest = ?"}) {
        SQLite::Statement d(*db_, sql);
        d.bind(1, digest);
        d.exec();
      }
      tx.commit();
    }));
    std::error_code ec;
    fs::remove_all(rootfsDir() + "/" + digestHex(digest), ec);
    dropUnreferencedBlobsLocked(blobsOf);
    return Status::ok();
  }

  void evictLocked(const std::string& keep) {
    while (cacheBytesLocked() > config_.maxCacheBytes) {
      std::string victim;
      (void)dbTry("eviction", [&] {
        SQLite::Statement q(*db_,
                            "SELECT digest FROM images WHERE digest NOT IN (SELECT image FROM "
                            "pins) AND digest != ? ORDER BY last_used_ms ASC, use_seq ASC");
        q.bind(1, keep);
        while (q.executeStep()) {
          std::string d = q.getColumn(0).getString();
          if (!inflightImages_.count(d)) {
            victim = d;
            break;
          }
        }
      });
      if (victim.empty()) {
        spdlog::warn(
            "image store: cache holds {} bytes, above the {} limit, but every other "
            "image is pinned",
            cacheBytesLocked(), config_.maxCacheBytes);
        return;
      }
      spdlog::info("image store: evicting {} (least recently used)", victim);
      (void)removeImageLocked(victim);
    }
  }

  Status addRefLocked(const std::string& name, const std::string& digest) {
    if (name.empty()) return Status::ok();
    return dbTry("add ref", [&] {
      SQLite::Statement q(*db_, "INSERT OR REPLACE INTO refs(name, digest) VALUES(?, ?)");
      q.bind(1, name);
      q.bind(2, digest);
      q.exec();
    });
  }

  Result<Image> installOrReuse(const std::string& manifestBytes, const std::string& digest,
                               const std::string& name, const BlobFetcher& fetch) {
    auto imageLock = lockFor("image " + digest);
    std::lock_guard g(*imageLock);
    {
      std::lock_guard lock(mu_);
      auto existing = lookupDigestLocked(digest, name);
      if (existing.isOk()) {
        RETURN_IF_ERROR(addRefLocked(name, digest));
        touchLocked(digest);
        return existing;
      }
    }
    return install(manifestBytes, digest, name, fetch);
  }

  Result<Image> install(const std::string& manifestBytes, const std::string& digest,
                        const std::string& name, const BlobFetcher& fetch) {
    std::string label = name.empty() ? digest : name;
    auto parsed = parseManifest(manifestBytes);
    if (!parsed.isOk()) return parsed.status().withContext(label);
    Manifest m = std::move(parsed).value();
    std::vector<Descriptor> all = m.layers;
    all.push_back(m.config);

    std::vector<std::string> added;  // blobs this install put in the store
    {
      std::lock_guard lock(mu_);
      inflightImages_.insert(digest);
      for (const auto& d : all) inflightBlobs_.insert(d.digest);
      inflightBlobs_.insert(digest);
    }
    std::string tmpRootfs;
    auto fail = [&](Status st) -> Result<Image> {
      std::error_code ec;
      if (!tmpRootfs.empty()) fs::remove_all(tmpRootfs, ec);
      std::lock_guard lock(mu_);
      inflightImages_.erase(digest);
      for (const auto& d : all) inflightBlobs_.erase(inflightBlobs_.find(d.digest));
      inflightBlobs_.erase(inflightBlobs_.find(digest));
      dropUnreferencedBlobsLocked(added);
      return st;
    };

    auto ensureBlob = [&](const Descriptor& d) -> Status {
      auto blobLock = lockFor("blob " + d.digest);
      std::lock_guard g(*blobLock);
      if (blobs_->has(d.digest)) {
        auto size = blobs_->size(d.digest);
        if (size.isOk() && *size == d.size) return Status::ok();
        (void)blobs_->remove(d.digest);  // wrong size: edited behind our back
      }
      Status st = fetch(d);
      if (st.isOk()) added.push_back(d.digest);
      return st;
    };

    if (Status st = ensureBlob(m.config); !st.isOk()) return fail(st.withContext(label));
    auto configBytes = blobs_->read(m.config.digest, kMaxManifestBytes);
    if (!configBytes.isOk()) return fail(configBytes.status());
    auto config = parseImageConfig(*configBytes);
    if (!config.isOk())
      return fail(config.status().withContext(label + ": config " + m.config.digest));
    if ((!config->os.empty() && config->os != config_.os) ||
        (!config->architecture.empty() && config->architecture != config_.architecture))
      return fail(invalidArgument(label + ": image is for " + config->os + "/" +
                                  config->architecture + ", this store runs " +
                                  platform().toString()));
    if (!config->diffIds.empty() && config->diffIds.size() != m.layers.size())
      return fail(invalidArgument(label + ": config lists " +
                                  std::to_string(config->diffIds.size()) + " diff_ids for " +
                                  std::to_string(m.layers.size()) + " layers"));
    uint64_t compressed = 0;
    for (const auto& l : m.layers) {
      compressed += l.size;
      Status st = ensureBlob(l);
      if (!st.isOk()) return fail(st.withContext(label));
    }

    tmpRootfs = rootfsDir() + "/.tmp-" + digestHex(digest).substr(0, 12) + "-" + randomName();
    std::error_code ec;
    fs::create_directories(tmpRootfs, ec);
    if (ec) return fail(internalError("cannot create " + tmpRootfs + ": " + ec.message()));
    ::chmod(tmpRootfs.c_str(), 0755);
    UnpackBudget budget;
    budget.maxBytes = config_.maxImageBytes;
    for (size_t i = 0; i < m.layers.size(); ++i) {
      const auto& l = m.layers[i];
      Status st = applyLayer(blobs_->path(l.digest), tmpRootfs, budget,
                             label + ": layer " + std::to_string(i) + " (" + l.digest + ")");
      if (!st.isOk()) return fail(st);
    }
    auto manifestDigest = blobs_->put(manifestBytes);
    if (!manifestDigest.isOk()) return fail(manifestDigest.status());
    if (*manifestDigest != digest)
      return fail(internalError(label + ": manifest digest changed in flight"));
    added.push_back(digest);

    std::string final = rootfsDir() + "/" + digestHex(digest);
    fs::remove_all(final, ec);
    if (::rename(tmpRootfs.c_str(), final.c_str()) != 0)
      return fail(internalError("cannot rename " + tmpRootfs + " to " + final + ": " +
                                std::strerror(errno)));
    tmpRootfs = final;  // fail() now removes the final dir
    std::unique_lock lock(mu_);
    Status st = dbTry("insert image", [&] {
      SQLite::Transaction tx(*db_);
      SQLite::Statement q(*db_,
                          "INSERT INTO images(digest, config_digest, config, compressed_bytes, "
                          "unpacked_bytes, last_used_ms, use_seq) VALUES(?, ?, ?, ?, ?, ?, ?)");
      q.bind(1, digest);
      q.bind(2, m.config.digest);
      q.bind(3, *configBytes);
      q.bind(4, static_cast<int64_t>(compressed));
      q.bind(5, static_cast<int64_t>(budget.usedBytes));
      q.bind(6, static_cast<int64_t>(nowMs()));
      q.bind(7, static_cast<int64_t>(++useSeq_));
      q.exec();
      auto addBlob = [&](const std::string& b, uint64_t size) {
        SQLite::Statement ib(
            *db_, "INSERT OR IGNORE INTO image_blobs(image, blob, size) VALUES(?, ?, ?)");
        ib.bind(1, digest);
        ib.bind(2, b);
        ib.bind(3, static_cast<int64_t>(size));
        ib.exec();
      };
      for (const auto& d : all) addBlob(d.digest, d.size);
      addBlob(digest, manifestBytes.size());
      if (!name.empty()) {
        SQLite::Statement r(*db_, "INSERT OR REPLACE INTO refs(name, digest) VALUES(?, ?)");
        r.bind(1, name);
        r.bind(2, digest);
        r.exec();
      }
      tx.commit();
    });
    if (!st.isOk()) {
      lock.unlock();  // fail() takes mu_ itself
      return fail(st);
    }
    inflightImages_.erase(digest);
    for (const auto& d : all) inflightBlobs_.erase(inflightBlobs_.find(d.digest));
    inflightBlobs_.erase(inflightBlobs_.find(digest));
    spdlog::info("image store: {} ({}) ready: {} layers, {} bytes compressed, {} unpacked", label,
                 digest, m.layers.size(), compressed, budget.usedBytes);
    evictLocked(digest);
    return lookupDigestLocked(digest, name);
  }

  // Mounts the overlay with paths relative to instanceDir (see RootfsOptions): a short-lived
  // thread gets its own working directory (unshare(CLONE_FS)), so the daemon's stays put.
  Status mountOverlay(const std::string& instanceDir, const std::string& lower,
                      const std::string& layers, const std::string& rootfs) {
    for (const auto& p : {lower, layers})
      if (p.find_first_of(",:\\") != std::string::npos)
        return invalidArgument("overlay paths may not contain ',', ':' or '\\': " + p);
    std::string opts =
        "lowerdir=" + lower + ",upperdir=" + layers + "/upper,workdir=" + layers + "/work";
    std::string error;
    std::thread([&] {
      if (::unshare(CLONE_FS) != 0 || ::chdir(instanceDir.c_str()) != 0) {
        error = std::string("cannot enter ") + instanceDir + ": " + std::strerror(errno);
        return;
      }
      if (::mount("overlay", "rootfs", "overlay", 0, opts.c_str()) != 0)
        error = "overlay mount on " + rootfs + " failed: " + std::strerror(errno);
    }).join();
    if (!error.empty()) return unavailable(error);
    return Status::ok();
  }

  ImageStoreConfig config_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<RegistryClient> client_;
  std::mutex mu_;  // guards db_, useSeq_, inflight sets
  std::unique_ptr<SQLite::Database> db_;
  int64_t useSeq_ = 0;
  std::multiset<std::string> inflightBlobs_;
  std::multiset<std::string> inflightImages_;
  std::mutex locksMu_;
  std::map<std::string, std::shared_ptr<std::mutex>> keyLocks_;
};

}  // namespace

Result<std::unique_ptr<ImageStore>> ImageStore::create(const ImageStoreConfig& configIn) {
  ImageStoreConfig config = configIn;
  if (config.root.empty()) return invalidArgument("image store: root is empty");
  config.root = absolutePath(config.root);
  std::error_code ec;
  fs::create_directories(config.root, ec);
  if (ec) return internalError("image store: cannot create " + config.root + ": " + ec.message());
  ASSIGN_OR_RETURN(auto blobs, BlobStore::open(config.root));
  RegistryClientConfig rc;
  rc.credentials = config.credentials;
  rc.insecureRegistries = config.insecureRegistries;
  rc.timeout = config.timeout;
  ASSIGN_OR_RETURN(auto client, RegistryClient::create(rc));
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(config.root + "/images.db",
                                            SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  } catch (const std::exception& e) {
    return internalError("image store: cannot open " + config.root + "/images.db: " + e.what());
  }
  auto store = std::make_unique<ImageStoreImpl>(std::move(config), std::move(blobs),
                                                std::move(client), std::move(db));
  RETURN_IF_ERROR(store->init());
  return std::unique_ptr<ImageStore>(std::move(store));
}

}  // namespace mercato::runtime::image
