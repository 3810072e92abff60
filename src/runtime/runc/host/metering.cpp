#include "runtime/runc/host/metering.hpp"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace mercato::runtime::host {
namespace fs = std::filesystem;

namespace {

bool readFile(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

// A file holding one unsigned number ("max" reads as 0).
uint64_t readU64(const std::string& path) {
  std::string s;
  if (!readFile(path, s)) return 0;
  try {
    size_t idx = 0;
    return std::stoull(s, &idx);
  } catch (...) {
    return 0;
  }
}

// "key value" lines (cpu.stat, memory.stat, memory.events, memory.oom_control).
bool readKey(const std::string& path, const std::string& key, uint64_t& value) {
  std::ifstream in(path);
  std::string k;
  uint64_t v;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (ls >> k >> v && k == key) {
      value = v;
      return true;
    }
  }
  return false;
}

std::string rel(const std::string& cgroupsPath) {
  std::string p = cgroupsPath;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  return p;
}

// v1: the first existing directory among the candidate hierarchy names.
std::string v1Dir(const std::string& root, std::initializer_list<const char*> hierarchies,
                  const std::string& cgroupsPath) {
  for (const char* h : hierarchies) {
    std::string base = root + "/" + h;
    if (fs::is_directory(base)) return base + "/" + rel(cgroupsPath);
  }
  return root + "/" + *hierarchies.begin() + "/" + rel(cgroupsPath);
}

bool validCgroupPath(const std::string& p) {
  // Reject traversal: the path is joined under each hierarchy root.
  for (const auto& part : fs::path(p))
    if (part == "..") return false;
  return !rel(p).empty();
}

}  // namespace

CgroupMode detectCgroupMode(const std::string& root) {
  struct statfs st {};
  if (statfs(root.c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return CgroupMode::kV2;
  return CgroupMode::kV1;
}

CgroupMode cgroupMode() {
  static const CgroupMode mode = detectCgroupMode();
  return mode;
}

std::string memoryCgroupDir(const std::string& cgroupsPath, CgroupMode mode,
                            const std::string& root) {
  if (mode == CgroupMode::kV2) return root + "/" + rel(cgroupsPath);
  return v1Dir(root, {"memory"}, cgroupsPath);
}

Result<uint64_t> readOomKills(const std::string& cgroupsPath, CgroupMode mode,
                              const std::string& root) {
  if (!validCgroupPath(cgroupsPath)) return invalidArgument("cgroup path '" + cgroupsPath + "'");
  std::string dir = memoryCgroupDir(cgroupsPath, mode, root);
  if (!fs::is_directory(dir)) return notFound("cgroup " + dir + " does not exist");
  uint64_t v = 0;
  if (mode == CgroupMode::kV2) {
    readKey(dir + "/memory.events", "oom_kill", v);
  } else if (!readKey(dir + "/memory.oom_control", "oom_kill", v)) {
    // Kernels before 4.13 have no oom_kill counter; failcnt counts hits of the limit, which is
    // the closest signal they offer.
    v = readU64(dir + "/memory.failcnt");
  }
  return v;
}

Result<CgroupStats> readCgroupStats(const std::string& cgroupsPath, CgroupMode mode,
                                    const std::string& root) {
  if (!validCgroupPath(cgroupsPath)) return invalidArgument("cgroup path '" + cgroupsPath + "'");
  CgroupStats s;
  std::string mem = memoryCgroupDir(cgroupsPath, mode, root);
  if (!fs::is_directory(mem)) return notFound("cgroup " + mem + " does not exist");
  uint64_t inactiveFile = 0;
  if (mode == CgroupMode::kV2) {
    std::string dir = root + "/" + rel(cgroupsPath);
    uint64_t usec = 0;
    readKey(dir + "/cpu.stat", "usage_usec", usec);
    s.cpuNanos = usec * 1000;
    s.memoryUsageBytes = readU64(dir + "/memory.current");
    s.memoryPeakBytes = readU64(dir + "/memory.peak");
    readKey(dir + "/memory.stat", "inactive_file", inactiveFile);
    readKey(dir + "/memory.events", "oom_kill", s.oomKills);
    s.pids = readU64(dir + "/pids.current");
  } else {
    s.cpuNanos = readU64(v1Dir(root, {"cpuacct", "cpu,cpuacct", "cpuacct,cpu"}, cgroupsPath) +
                         "/cpuacct.usage");
    s.memoryUsageBytes = readU64(mem + "/memory.usage_in_bytes");
    s.memoryPeakBytes = readU64(mem + "/memory.max_usage_in_bytes");
    readKey(mem + "/memory.stat", "total_inactive_file", inactiveFile);
    ASSIGN_OR_RETURN(s.oomKills, readOomKills(cgroupsPath, mode, root));
    s.pids = readU64(v1Dir(root, {"pids"}, cgroupsPath) + "/pids.current");
  }
  s.memoryBytes = s.memoryUsageBytes > inactiveFile ? s.memoryUsageBytes - inactiveFile : 0;
  return s;
}

namespace {

std::vector<std::string> hierarchyRoots(CgroupMode mode, const std::string& root) {
  if (mode == CgroupMode::kV2) return {root};
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    // cpu -> cpu,cpuacct style symlinks name the same hierarchy twice.
    if (e.is_symlink(ec) || !e.is_directory(ec)) continue;
    out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status rmdirTree(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::ok();
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec)) RETURN_IF_ERROR(rmdirTree(e.path().string()));
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    if (errno == EBUSY) return failedPrecondition("rmdir " + dir + ": cgroup still has processes");
    return internalError("rmdir " + dir + ": " + strerror(errno));
  }
  return Status::ok();
}

}  // namespace

Status removeCgroup(const std::string& cgroupsPath, CgroupMode mode, const std::string& root) {
  if (!validCgroupPath(cgroupsPath)) return invalidArgument("cgroup path '" + cgroupsPath + "'");
  Status first = Status::ok();
  for (const auto& h : hierarchyRoots(mode, root)) {
    Status st = rmdirTree(h + "/" + rel(cgroupsPath));
    if (!st.isOk() && first.isOk()) first = st;
  }
  return first;
}

Result<std::vector<std::string>> listCgroups(const std::string& parent, CgroupMode mode,
                                             const std::string& root) {
  if (!validCgroupPath(parent)) return invalidArgument("cgroup path '" + parent + "'");
  std::set<std::string> names;
  for (const auto& h : hierarchyRoots(mode, root)) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(h + "/" + rel(parent), ec))
      if (e.is_directory(ec) && !e.is_symlink(ec)) names.insert(e.path().filename().string());
  }
  std::string prefix = "/" + rel(parent) + "/";
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(prefix + n);
  return out;
}

Result<InterfaceCounters> readInterfaceCounters(const std::string& ifname,
                                                const std::string& sysClassNet) {
  if (ifname.empty() || ifname.find('/') != std::string::npos || ifname == "." || ifname == "..")
    return invalidArgument("interface name '" + ifname + "'");
  std::string dir = sysClassNet + "/" + ifname + "/statistics";
  if (!fs::is_directory(dir)) return notFound("interface " + ifname + " does not exist");
  InterfaceCounters c;
  c.rxBytes = readU64(dir + "/rx_bytes");
  c.txBytes = readU64(dir + "/tx_bytes");
  c.rxPackets = readU64(dir + "/rx_packets");
  c.txPackets = readU64(dir + "/tx_packets");
  return c;
}

}  // namespace mercato::runtime::host
