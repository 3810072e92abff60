// User namespaces for the tenant sandbox: every deployment runs in its own range of host uids and
// gids, so container root is an unprivileged host uid (docs/runc-host.md, "User namespaces").
//
//  - An IdRange is claimed host-wide (several data dirs, i.e. several runtimes, share one host)
//    and durably: one claim file per range under a claims directory. A range is never handed out
//    again while its claim exists; a claim whose owner's data dir is gone is reclaimed.
//  - createUserns() makes a user namespace with that mapping and keeps it alive without a process
//    by bind-mounting its nsfs file (like `ip netns add` does for network namespaces). The
//    container joins it by path; instance network namespaces are created owned by it (so runc can
//    mount sysfs for the container), and the image's rootfs is mounted id-mapped through it
//    (idmapBind), so nothing is copied or chowned per deployment.
//
// Thread-safety: free functions; claims are serialized host-wide by a lock file. Forks a short
// child (only async-signal-safe calls run in it) because a multithreaded process cannot enter a
// new user namespace itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::host {

// Container ids 0..size-1 map to host ids hostBase..hostBase+size-1 (uids and gids alike).
struct IdRange {
  uint32_t hostBase = 0;
  uint32_t size = 0;
  bool operator==(const IdRange&) const = default;
};

// Every range has this size (the whole 16-bit id space a Linux image expects).
inline constexpr uint32_t kIdRangeSize = 65536;
// Ranges are carved from [kIdPoolStart, kIdPoolStart + kIdPoolRanges * kIdRangeSize): far above
// the uids of host users and of the usual /etc/subuid allocations.
inline constexpr uint32_t kIdPoolStart = 0x40000000u;
inline constexpr uint32_t kIdPoolRanges = 16384;

// Claims the lowest free range for `owner` (a label, e.g. the deployment id) of the data dir
// `ownerDir`. The claim survives restarts. Errors: kResourceExhausted when the pool is full.
Result<IdRange> claimIdRange(const std::string& claimsDir, const std::string& ownerDir,
                             const std::string& owner);
// Drops the claim (OK if it is already gone). REQUIRES: no file owned by the range is left.
Status releaseIdRange(const std::string& claimsDir, const IdRange& range);
// The owner recorded for the claim of `range`, or kNotFound.
Result<std::string> idRangeOwner(const std::string& claimsDir, const IdRange& range);

struct IdRangeClaim {
  IdRange range;
  std::string ownerDir;
  std::string owner;
};
// Every claim in claimsDir (stale ones included).
Result<std::vector<IdRangeClaim>> listIdRangeClaims(const std::string& claimsDir);

// Creates a user namespace mapping 0..range.size-1 to range.hostBase.. and bind-mounts it on
// `path` (the file is created). kAlreadyExists when `path` already holds a namespace.
Status createUserns(const std::string& path, const IdRange& range);
// Unmounts and deletes `path`. OK if it is gone.
Status removeUserns(const std::string& path);
// True when `path` is a bind mount of a namespace (nsfs).
bool isNamespaceFile(const std::string& path);

// Creates a network namespace owned by the user namespace at `usernsPath` and bind-mounts it on
// `netnsFile` (which must exist, empty). Root of that user namespace can then mount sysfs for its
// own network namespace.
Status createNetnsInUserns(const std::string& netnsFile, const std::string& usernsPath);

// Bind-mounts `source` (a directory) on `target` (an existing directory), id-mapped through the
// user namespace at `usernsPath`: a file the host sees owned by uid u appears owned by
// hostBase + u. Errors: kFailedPrecondition when the kernel or filesystem can't id-map.
Status idmapBind(const std::string& source, const std::string& target,
                 const std::string& usernsPath);

}  // namespace mercato::runtime::host
