// Instance disks: a hard size limit for one instance's writable layer. The overlay's upper and
// work dirs (and the instance's generated /etc files) live on a filesystem of its own, an ext4
// image in a sparse file attached to a loop device, so a container that writes past its limit
// gets ENOSPC inside and never fills the host's disk (docs/runc-host.md, "Disk quotas").
//
// Why a loop filesystem and not a project quota: the host filesystem here is ext4 on a kernel
// without quota format support (CONFIG_QFMT_V2 and CONFIG_XFS_QUOTA are off), so project quotas
// can't be turned on; a tmpfs would put disk writes into RAM. mkfs costs ~80 ms, so each size is
// formatted once into a template image and an instance's image is a sparse copy of it (only the
// metadata blocks are copied, ~150 KiB for 1 GiB). The loop device is attached with AUTOCLEAR:
// unmounting the filesystem frees it, so nothing is left to detach. Mounted with `discard`,
// blocks the container frees are punched out of the sparse file and return to the host.
//
// Thread-safety: free functions; templates are created under an in-process mutex and published
// by rename, so concurrent processes may both format one but never see a partial template.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.hpp"

namespace mercato::runtime::host {

// The smallest disk (ext4 needs room for its metadata and a usable layer).
inline constexpr int64_t kMinDiskBytes = 16ll << 20;

struct DiskRequest {
  std::string imageFile;    // the sparse image (created; its dir must exist)
  std::string mountPoint;   // an existing empty directory
  int64_t bytes = 0;        // filesystem size (>= kMinDiskBytes)
  std::string templateDir;  // where formatted templates are cached (created)
  uint32_t rootUid = 0;     // owner of the filesystem's root directory
  uint32_t rootGid = 0;
};

// Creates the image (a copy of the template for `bytes`), attaches it to a free loop device and
// mounts it nodev,nosuid,discard on mountPoint. On failure nothing is left mounted or attached.
// Errors: kInvalidArgument size, kResourceExhausted the host filesystem has less free space than
// `bytes`, kUnavailable no loop device / mkfs / mount failed.
Status createDisk(const DiskRequest& request);

// Mounts an existing image again (after a restart found it unmounted). kNotFound if missing.
Status mountDisk(const std::string& imageFile, const std::string& mountPoint);

// Unmounts mountPoint (the loop device detaches itself) and deletes imageFile. OK if gone.
Status removeDisk(const std::string& mountPoint, const std::string& imageFile);

// True when `path` is the root of a mounted filesystem.
bool isMountPoint(const std::string& path);

struct DiskUsage {
  int64_t usedBytes = 0;
  int64_t totalBytes = 0;
};
// Used and total bytes of the filesystem mounted at mountPoint (statfs).
Result<DiskUsage> diskUsage(const std::string& mountPoint);

}  // namespace mercato::runtime::host
