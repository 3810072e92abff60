// ImageStore: the runtime's image cache. Pulls images from registries (or imports OCI layouts),
// verifies every digest and size, unpacks each image once into a cached rootfs, and gives
// instances their own writable rootfs (overlayfs over the cached one, or a copy).
//
// On disk, under config.root:
//   blobs/sha256/<hex>      verified blobs (manifests, configs, layers), shared between images
//   blobs/tmp/              in-flight downloads (cleared at start)
//   rootfs/<hex>/           unpacked rootfs of image manifest <hex>; appears only by rename of a
//                           complete unpack from rootfs/.tmp-*, so it is never partial
//   images.db               SQLite (WAL): images, refs, blob sizes, last-used, pins
// A failed pull removes everything it added (blobs no other image uses, temp rootfs, rows).
//
// Pins: prepareRootfs() records (instanceDir → image) in images.db before mounting, so a pin
// survives a restart; calling prepareRootfs() again for an existing instanceDir re-adopts it
// (remounts if the mount is gone). Pinned images are never evicted or removed. Pins whose
// instanceDir vanished are dropped at create().
//
// Eviction: after each pull/import, while cacheBytes() > maxCacheBytes, the least recently used
// unpinned image loses its rootfs and rows, then blobs no remaining image references are deleted.
//
// Thread-safety: all methods are safe to call concurrently. Blocking (network, disk, SQLite):
// call from a worker pool, never an event loop. Concurrent pulls of one image are deduplicated:
// one does the work, the others wait for it and then read the cache.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "runtime/runc/image/manifest.hpp"
#include "runtime/runc/image/registry_client.hpp"

namespace mercato::runtime::image {

struct Image {
  std::string reference;  // canonical reference it was pulled/imported as ("" if by digest)
  std::string digest;     // image manifest digest: the image's identity
  std::string configDigest;
  ImageConfig config;
  uint64_t compressedBytes = 0;  // sum of layer blob sizes
  uint64_t unpackedBytes = 0;    // regular-file bytes in the rootfs
  std::string rootfsPath;        // the cached, read-only-by-convention unpacked rootfs
};

struct PullProgress {
  std::string digest;  // blob being fetched
  uint64_t done = 0, total = 0;
};

enum class RootfsMode { kAuto, kOverlay, kCopy };

// Where an instance's layers live. Paths inside the instance dir are passed to overlayfs relative
// to it, so a tenant reading its own /proc/self/mountinfo sees "lowerdir=lower,upperdir=..." and
// no host path.
struct RootfsOptions {
  // The image's rootfs as the instance should see it: a mount the caller made inside the
  // instance dir (e.g. id-mapped for a user namespace). "" = the cache's own directory.
  std::string lowerDir;
  // Directory that holds upper/ and work/ (created), e.g. the instance's size-limited disk.
  // "" = the instance dir.
  std::string layerDir;
  // Owner of the upper dir's root (the container's root in its user namespace).
  uint32_t rootUid = 0;
  uint32_t rootGid = 0;
};

struct ImageStoreConfig {
  std::string root;                      // cache dir (created)
  uint64_t maxCacheBytes = 20ull << 30;  // blobs + unpacked rootfs; LRU eviction above it
  uint64_t maxImageBytes = 8ull << 30;   // unpacked size quota per image
  std::string os = "linux", architecture = "amd64", variant;
  std::map<std::string, RegistryCredentials> credentials;  // by registry host[:port]
  std::vector<std::string> insecureRegistries;             // plain http besides loopback
  std::chrono::milliseconds timeout{60'000};
  RootfsMode rootfsMode = RootfsMode::kAuto;  // kAuto: overlay, else copy
  Clock* clock = nullptr;                     // last-used times; null = system time
};

class ImageStore {
 public:
  static Result<std::unique_ptr<ImageStore>> create(const ImageStoreConfig& config);
  virtual ~ImageStore() = default;

  // Returns the cached image when `reference` was pulled before (no network: tags are not
  // re-resolved, like Kubernetes' IfNotPresent), else pulls, verifies and unpacks it.
  // Errors: kInvalidArgument bad reference / digest mismatch / unsafe layer, kNotFound unknown
  // image or platform, kTooLarge quota, kUnauthenticated, kUnavailable network.
  virtual Result<Image> pull(const std::string& reference,
                             std::function<void(const PullProgress&)> progress = {}) = 0;

  // Imports an OCI image-layout directory or tarball, verifying every blob digest. refName
  // picks the image in index.json (see resolveLayoutManifest) and becomes its reference.
  virtual Result<Image> importLayout(const std::string& path, const std::string& refName = "") = 0;

  // A cached image by reference ("busybox", "host/repo:tag") or manifest digest; kNotFound else.
  virtual Result<Image> find(const std::string& referenceOrDigest) = 0;

  // Gives an instance its own rootfs at instanceDir/rootfs and pins the image. Idempotent for an
  // existing instanceDir. Returns the rootfs path.
  virtual Result<std::string> prepareRootfs(const Image& image, const std::string& instanceDir,
                                            const RootfsOptions& options = {}) = 0;
  // Unmounts everything mounted under instanceDir (rootfs first, lazily if busy), then deletes
  // instanceDir and drops the pin. Never deletes through a mount: if one is left, it fails and
  // keeps the files. OK if already gone.
  virtual Status releaseRootfs(const std::string& instanceDir) = 0;

  virtual Result<std::vector<Image>> list() = 0;
  // Deletes an image (its rootfs, refs, blobs no one else uses). kFailedPrecondition if pinned.
  virtual Status remove(const std::string& digest) = 0;
  // Bytes of blobs plus unpacked rootfs currently cached.
  virtual uint64_t cacheBytes() = 0;
  // HTTP requests this store sent (tests check cache hits with it).
  virtual uint64_t registryRequests() const = 0;
};

}  // namespace mercato::runtime::image
