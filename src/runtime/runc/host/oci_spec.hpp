// OCI runtime spec generation: turns one container's settings into the config.json (OCI
// runtime-spec 1.0.2) that runc 1.1 runs, plus the files a bundle needs besides the rootfs.
//
// The spec is hardened by default: no new privileges, a reduced capability set (Docker's
// default minus NET_RAW and MKNOD, see docs/runc-host.md), masked /proc paths, a read-only /sys,
// a deny-all device cgroup with the standard allow list, its own pid/ipc/uts/mount/network
// namespaces and the default seccomp profile (seccomp.hpp). Impossible inputs fail with
// kInvalidArgument naming the field, before runc sees them.
//
// Thread-safety: pure functions over their arguments (resolveUser reads the rootfs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "runtime/runc/host/userns.hpp"

namespace mercato::runtime::host {

// The smallest memory limit runc accepts.
inline constexpr int64_t kMinMemoryBytes = 4 << 20;
// CFS period used for CPU quotas; quota = millicores * 100.
inline constexpr int64_t kCpuPeriodUs = 100000;

struct BindMount {
  std::string source;       // host path (absolute)
  std::string destination;  // container path (absolute)
  bool readonly = false;
};

struct ContainerConfig {
  std::string id;               // container id, [A-Za-z0-9_.-]+; also names the cgroup
  std::string rootfs;           // absolute path of the unpacked root filesystem
  bool readonlyRootfs = false;  // when true, /tmp becomes a tmpfs

  std::vector<std::string> args;  // the process; args[0] is resolved by runc inside the rootfs
  std::vector<std::string> env;   // "KEY=VALUE"; PATH is added when missing
  std::string cwd = "/";          // absolute
  // "" (root), "uid", "uid:gid" (numeric) or a user name / "name:group" resolved against the
  // rootfs's /etc/passwd and /etc/group.
  std::string user;
  std::string hostname;  // defaults to the id (truncated to 63 chars)

  // Path of the network namespace to join (/var/run/netns/<name>). Empty: a fresh, unconnected
  // network namespace (loopback only).
  std::string netnsPath;
  // The user namespace to join (a bind-mounted nsfs file, userns.hpp) and its id mapping, which
  // must be the one that namespace was made with. Empty: the host's user namespace (container
  // root is host root; only for references and tests).
  std::string usernsPath;
  IdRange ids;
  // Cgroup path relative to every hierarchy's root. Empty: "/mercato/<id>".
  std::string cgroupsPath;
  // Directory holding generated resolv.conf, hosts and hostname; each file that exists there is
  // bind-mounted read-only over /etc/<file>. Empty: none.
  std::string etcDir;

  int64_t cpuMillicores = 0;  // 0 = unlimited
  int64_t memoryBytes = 0;    // 0 = unlimited; swap is limited to the same value (no swap)
  int64_t pidsLimit = 0;      // 0 = unlimited
  // RLIMIT_NOFILE soft and hard. 0: this process's hard limit, capped at 65536 (raising it above
  // the hard limit needs CAP_SYS_RESOURCE in the host's user namespace, which runc may lack).
  uint64_t nofile = 0;
  std::vector<BindMount> mounts;

  // The seccomp profile (seccomp.hpp): the default one with these relaxable groups allowed. Set
  // from the provider's configuration (RuntimeConfig::sandbox.seccompAllow), never from a
  // tenant's manifest. An unknown group is kInvalidArgument.
  std::vector<std::string> seccompAllow;
  // false: no seccomp section at all. Only for references in tests and benchmarks.
  bool seccomp = true;

  // Cores on the host, for validating cpuMillicores. 0: std::thread::hardware_concurrency().
  int hostCpus = 0;
};

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additionalGids;
};

// Resolves `user` (see ContainerConfig::user) against <rootfs>/etc/passwd and /etc/group.
// A numeric uid missing from passwd is allowed (gid defaults to the uid's passwd entry or 0).
// Fails with kInvalidArgument when a name isn't found.
Result<ResolvedUser> resolveUser(const std::string& rootfs, const std::string& user);

// The capabilities granted (bounding = effective = permitted).
const std::vector<std::string>& defaultCapabilities();

// Builds config.json. Fails with kInvalidArgument naming the offending field.
Result<nlohmann::json> makeOciSpec(const ContainerConfig& config);

// Writes <bundleDir>/config.json atomically (temp file + rename), creating bundleDir.
Status writeBundleConfig(const std::string& bundleDir, const nlohmann::json& spec);

struct EtcFiles {
  std::string hostname;
  // Extra "IP name..." lines for /etc/hosts (localhost entries are always present).
  std::vector<std::string> hosts;
  // Nameservers; empty: copied from the host's /etc/resolv.conf (loopback stubs are dropped
  // because they aren't reachable from the container's network namespace).
  std::vector<std::string> nameservers;
  std::vector<std::string> search;
};

// Writes hostname, hosts and resolv.conf into dir (created if missing).
Status writeEtcFiles(const std::string& dir, const EtcFiles& files);

}  // namespace mercato::runtime::host
