// Metering readers: raw usage counters of a container's cgroup and of its host-side veth.
// Readers only; what to bill and how often to sample is the caller's policy.
//
// cgroup v1 (separate hierarchies under /sys/fs/cgroup/<controller>) and v2 (one unified tree)
// are both supported; the root is a parameter so tests read a fake tree. cgroupsPath is the
// path in config.json (e.g. "/mercato/<id>"), relative to each hierarchy's root.
//
// Thread-safety: pure functions over the filesystem; cgroupMode() caches its answer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::host {

inline constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
inline constexpr const char* kSysClassNet = "/sys/class/net";

enum class CgroupMode { kV1, kV2 };

// v2 when `root` is a cgroup2 mount (pure unified); v1 otherwise (legacy or hybrid, where
// controllers live in v1 hierarchies even if a v2 tree is mounted at <root>/unified).
CgroupMode detectCgroupMode(const std::string& root = kCgroupRoot);
// detectCgroupMode() of the real root, computed once.
CgroupMode cgroupMode();

struct CgroupStats {
  uint64_t cpuNanos = 0;  // total CPU time, user + system (v1 cpuacct.usage, v2 usage_usec)
  // Working set: usage minus inactive file cache (what the OOM killer can't reclaim cheaply),
  // as kubelet/cAdvisor report it.
  uint64_t memoryBytes = 0;
  uint64_t memoryUsageBytes = 0;  // raw usage including all page cache
  uint64_t memoryPeakBytes = 0;   // v1 max_usage_in_bytes, v2 memory.peak (0 if unavailable)
  uint64_t oomKills = 0;  // v1 memory.oom_control oom_kill (failcnt if absent), v2 memory.events
  uint64_t pids = 0;      // pids.current
};

// kNotFound when the cgroup doesn't exist (in the memory hierarchy on v1). Counters whose file is
// missing read as 0.
Result<CgroupStats> readCgroupStats(const std::string& cgroupsPath, CgroupMode mode = cgroupMode(),
                                    const std::string& root = kCgroupRoot);

// OOM kills so far; kNotFound when the cgroup is gone.
Result<uint64_t> readOomKills(const std::string& cgroupsPath, CgroupMode mode = cgroupMode(),
                              const std::string& root = kCgroupRoot);

// The memory hierarchy's directory of the cgroup (where memory.* files are).
std::string memoryCgroupDir(const std::string& cgroupsPath, CgroupMode mode = cgroupMode(),
                            const std::string& root = kCgroupRoot);

// rmdir of the cgroup (children first) in every hierarchy. Missing directories are fine; a
// cgroup that still has processes fails with kFailedPrecondition.
Status removeCgroup(const std::string& cgroupsPath, CgroupMode mode = cgroupMode(),
                    const std::string& root = kCgroupRoot);

// The child cgroups of `parent` (e.g. "/mercato"), as full paths ("/mercato/<id>"), sorted, from
// the union of all hierarchies. A missing parent is an empty list.
Result<std::vector<std::string>> listCgroups(const std::string& parent,
                                             CgroupMode mode = cgroupMode(),
                                             const std::string& root = kCgroupRoot);

// Byte/packet counters of a host network interface, from <sysClassNet>/<if>/statistics.
// For the host end of a container's veth pair the directions are swapped: rxBytes is what the
// container SENT (its egress), txBytes is what it RECEIVED (its ingress).
struct InterfaceCounters {
  uint64_t rxBytes = 0;
  uint64_t txBytes = 0;
  uint64_t rxPackets = 0;
  uint64_t txPackets = 0;
};
// kNotFound when the interface doesn't exist.
Result<InterfaceCounters> readInterfaceCounters(const std::string& ifname,
                                                const std::string& sysClassNet = kSysClassNet);

}  // namespace mercato::runtime::host
