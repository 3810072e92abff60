#include "runtime/runc/host/oci_spec.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/strings.hpp"
#include "runtime/runc/host/network.hpp"
#include "runtime/runc/host/seccomp.hpp"

namespace mercato::runtime::host {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool parseU32(std::string_view s, uint32_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Reads a colon-separated database (/etc/passwd, /etc/group) of the rootfs. A missing file is
// an empty database. Symlinks are not followed out of the rootfs: a passwd that is a symlink is
// resolved relative to the rootfs, not the host.
std::vector<std::vector<std::string>> readColonDb(const std::string& rootfs, const char* rel) {
  std::vector<std::vector<std::string>> rows;
  fs::path p = fs::path(rootfs) / rel;
  std::error_code ec;
  if (fs::is_symlink(p, ec)) {
    fs::path target = fs::read_symlink(p, ec);
    if (ec) return rows;
    p = target.is_absolute() ? fs::path(rootfs) / target.relative_path() : p.parent_path() / target;
  }
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    rows.push_back(split(line, ':'));
  }
  return rows;
}

bool validId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return id != "." && id != "..";
}

json mount(const std::string& dst, const std::string& type, const std::string& src,
           std::vector<std::string> options) {
  json m = {{"destination", dst}, {"type", type}, {"source", src}};
  if (!options.empty()) m["options"] = options;
  return m;
}

json deviceRule(bool allow, const char* type, int64_t major, int64_t minor, const char* access) {
  json r = {{"allow", allow}, {"access", access}};
  if (type) r["type"] = type;
  if (major >= 0) r["major"] = major;
  if (minor >= 0) r["minor"] = minor;
  return r;
}

}  // namespace

const std::vector<std::string>& defaultCapabilities() {
  // Docker's default set minus NET_RAW (no raw sockets: ARP/ICMP spoofing on the bridge) and
  // MKNOD (device nodes are useless behind the device cgroup). See docs/runc-host.md.
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_SETGID", "CAP_SETUID",       "CAP_SETFCAP",          "CAP_SETPCAP",
      "CAP_KILL",   "CAP_AUDIT_WRITE",  "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"};
  return caps;
}

Result<ResolvedUser> resolveUser(const std::string& rootfs, const std::string& user) {
  ResolvedUser r;
  if (user.empty()) return r;
  std::string userPart = user, groupPart;
  if (auto colon = user.find(':'); colon != std::string::npos) {
    userPart = user.substr(0, colon);
    groupPart = user.substr(colon + 1);
    if (userPart.empty() || groupPart.empty())
      return invalidArgument("user: '" + user + "': expected uid[:gid] or name[:group]");
  }
  auto passwd = readColonDb(rootfs, "etc/passwd");
  bool found = false;
  std::string userName;
  uint32_t uid = 0;
  bool numericUser = parseU32(userPart, uid);
  for (const auto& row : passwd) {
    if (row.size() < 4) continue;
    uint32_t rowUid, rowGid;
    if (!parseU32(row[2], rowUid) || !parseU32(row[3], rowGid)) continue;
    if ((numericUser && rowUid == uid) || (!numericUser && row[0] == userPart)) {
      r.uid = rowUid;
      r.gid = rowGid;
      userName = row[0];
      found = true;
      break;
    }
  }
  if (!found) {
    if (!numericUser)
      return invalidArgument("user: '" + userPart + "' is not in the image's /etc/passwd (" +
                             rootfs + "/etc/passwd)");
    r.uid = uid;
    r.gid = 0;
  }
  auto groups = readColonDb(rootfs, "etc/group");
  if (!groupPart.empty()) {
    uint32_t gid;
    if (parseU32(groupPart, gid)) {
      r.gid = gid;
    } else {
      bool gfound = false;
      for (const auto& row : groups)
        if (row.size() >= 3 && row[0] == groupPart && parseU32(row[2], gid)) {
          r.gid = gid;
          gfound = true;
          break;
        }
      if (!gfound)
        return invalidArgument("user: group '" + groupPart + "' is not in the image's /etc/group");
    }
  }
  // Supplementary groups: every group that lists the user as a member.
  if (!userName.empty())
    for (const auto& row : groups) {
      if (row.size() < 4) continue;
      uint32_t gid;
      if (!parseU32(row[2], gid) || gid == r.gid) continue;
      for (const auto& member : split(row[3], ','))
        if (member == userName) {
          r.additionalGids.push_back(gid);
          break;
        }
    }
  return r;
}

Result<json> makeOciSpec(const ContainerConfig& c) {
  if (!validId(c.id))
    return invalidArgument("id: '" + c.id + "': expected 1-128 characters of [A-Za-z0-9_.-]");
  if (c.rootfs.empty() || c.rootfs[0] != '/')
    return invalidArgument("rootfs: '" + c.rootfs + "': expected an absolute path");
  if (c.args.empty() || c.args[0].empty()) return invalidArgument("args: expected a command");
  if (c.cwd.empty() || c.cwd[0] != '/')
    return invalidArgument("cwd: '" + c.cwd + "': expected an absolute path");
  bool hasPath = false;
  for (size_t i = 0; i < c.env.size(); ++i) {
    const auto& e = c.env[i];
    auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0 || e.find('\0') != std::string::npos)
      return invalidArgument("env[" + std::to_string(i) + "]: '" + e +
                             "': expected KEY=VALUE with a non-empty KEY");
    if (e.compare(0, 5, "PATH=") == 0) hasPath = true;
  }
  int hostCpus =
      c.hostCpus > 0 ? c.hostCpus : static_cast<int>(std::thread::hardware_concurrency());
  if (hostCpus <= 0) hostCpus = 1;
  if (c.cpuMillicores < 0)
    return invalidArgument("resources.cpu: " + std::to_string(c.cpuMillicores) +
                           " millicores: expected >= 0");
  if (c.cpuMillicores > int64_t{hostCpus} * 1000)
    return invalidArgument("resources.cpu: " + std::to_string(c.cpuMillicores) +
                           " millicores exceeds the host's " + std::to_string(hostCpus) + " cores");
  if (c.memoryBytes < 0 || (c.memoryBytes > 0 && c.memoryBytes < kMinMemoryBytes))
    return invalidArgument("resources.memory: " + std::to_string(c.memoryBytes) +
                           " bytes: expected 0 (unlimited) or at least 4 MiB");
  if (c.pidsLimit < 0)
    return invalidArgument("resources.pids: " + std::to_string(c.pidsLimit) +
                           ": expected >= 1 (or 0 for unlimited)");
  for (size_t i = 0; i < c.mounts.size(); ++i) {
    const auto& m = c.mounts[i];
    if (m.source.empty() || m.source[0] != '/' || m.destination.empty() || m.destination[0] != '/')
      return invalidArgument("mounts[" + std::to_string(i) +
                             "]: source and destination must be absolute paths");
  }
  ASSIGN_OR_RETURN(ResolvedUser user, resolveUser(c.rootfs, c.user));

  std::vector<std::string> env = c.env;
  if (!hasPath)
    env.insert(env.begin(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

  json userJson = {{"uid", user.uid}, {"gid", user.gid}};
  if (!user.additionalGids.empty()) userJson["additionalGids"] = user.additionalGids;
  uint64_t nofile = c.nofile;
  if (nofile == 0) {
    struct rlimit rl {};
    nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
      nofile = std::min<uint64_t>(rl.rlim_max, 65536);
    else if (rl.rlim_max == RLIM_INFINITY)
      nofile = 65536;
  }
  const auto& caps = defaultCapabilities();
  json process = {
      {"terminal", false},
      {"user", userJson},
      {"args", c.args},
      {"env", env},
      {"cwd", c.cwd},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", nofile}, {"soft", nofile}}})},
      {"noNewPrivileges", true},
  };

  json mounts = json::array({
      mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  });
  if (c.readonlyRootfs)
    mounts.push_back(
        mount("/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777", "size=65536k"}));
  if (!c.etcDir.empty()) {
    for (const char* f : {"resolv.conf", "hosts", "hostname"}) {
      std::string src = c.etcDir + "/" + f;
      if (access(src.c_str(), F_OK) == 0)
        mounts.push_back(mount(std::string("/etc/") + f, "bind", src,
                               {"rbind", "ro", "nosuid", "nodev", "noexec"}));
    }
  }
  for (const auto& m : c.mounts) {
    std::vector<std::string> opts = {"rbind", "nosuid", "nodev"};
    opts.push_back(m.readonly ? "ro" : "rw");
    mounts.push_back(mount(m.destination, "bind", m.source, opts));
  }

  json netns = {{"type", "network"}};
  if (!c.netnsPath.empty()) netns["path"] = c.netnsPath;
  json namespaces = json::array(
      {{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}, netns});
  json idMaps = json::array();
  if (!c.usernsPath.empty()) {
    if (c.ids.size == 0) return invalidArgument("ids: a user namespace needs its id range");
    namespaces.push_back({{"type", "user"}, {"path", c.usernsPath}});
    idMaps.push_back({{"containerID", 0}, {"hostID", c.ids.hostBase}, {"size", c.ids.size}});
  }

  json devices = json::array({deviceRule(false, nullptr, -1, -1, "rwm")});
  // The standard allow list (null, zero, full, tty, random, urandom, ptmx, pts).
  for (auto [maj, min] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 3}, {1, 5}, {1, 7}, {5, 0}, {1, 8}, {1, 9}, {5, 2}, {136, -1}})
    devices.push_back(deviceRule(true, "c", maj, min, "rwm"));

  json resources = {{"devices", devices}};
  if (c.cpuMillicores > 0)
    resources["cpu"] = {{"quota", c.cpuMillicores * (kCpuPeriodUs / 1000)},
                        {"period", kCpuPeriodUs}};
  if (c.memoryBytes > 0) resources["memory"] = {{"limit", c.memoryBytes}, {"swap", c.memoryBytes}};
  if (c.pidsLimit > 0) resources["pids"] = {{"limit", c.pidsLimit}};

  std::string hostname = c.hostname.empty() ? c.id.substr(0, 63) : c.hostname;
  json spec = {
      {"ociVersion", "1.0.2"},
      {"process", process},
      {"root", {{"path", c.rootfs}, {"readonly", c.readonlyRootfs}}},
      {"hostname", hostname},
      {"mounts", mounts},
      {"linux",
       {{"namespaces", namespaces},
        {"cgroupsPath", c.cgroupsPath.empty() ? "/mercato/" + c.id : c.cgroupsPath},
        {"resources", resources},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
  };
  if (!idMaps.empty()) {
    spec["linux"]["uidMappings"] = idMaps;
    spec["linux"]["gidMappings"] = idMaps;
  }
  if (c.seccomp) {
    auto seccomp = seccompProfile(c.seccompAllow);
    if (!seccomp.isOk()) return seccomp.status().withContext("seccompAllow");
    spec["linux"]["seccomp"] = std::move(*seccomp);
  }
  return spec;
}

namespace {
Status writeFileAtomic(const fs::path& path, const std::string& data) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return internalError("cannot write " + tmp.string());
    out << data;
    out.flush();
    if (!out) return internalError("short write to " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return internalError("rename " + tmp.string() + " -> " + path.string() + ": " + ec.message());
  return Status::ok();
}
}  // namespace

Status writeBundleConfig(const std::string& bundleDir, const json& spec) {
  std::error_code ec;
  fs::create_directories(bundleDir, ec);
  if (ec) return internalError("create bundle dir " + bundleDir + ": " + ec.message());
  return writeFileAtomic(fs::path(bundleDir) / "config.json", spec.dump(2));
}

Status writeEtcFiles(const std::string& dir, const EtcFiles& files) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internalError("create " + dir + ": " + ec.message());
  RETURN_IF_ERROR(writeFileAtomic(fs::path(dir) / "hostname", files.hostname + "\n"));
  std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& h : files.hosts) hosts += h + "\n";
  RETURN_IF_ERROR(writeFileAtomic(fs::path(dir) / "hosts", hosts));
  std::vector<std::string> ns = files.nameservers;
  std::vector<std::string> search = files.search;
  if (ns.empty()) {
    ResolvConf host = hostResolvConf();  // the same list the firewall's DNS rules accept
    ns = std::move(host.nameservers);
    if (search.empty()) search = std::move(host.search);
  }
  std::string resolv;
  for (const auto& n : ns) resolv += "nameserver " + n + "\n";
  if (!search.empty()) {
    resolv += "search";
    for (const auto& s : search) resolv += " " + s;
    resolv += "\n";
  }
  return writeFileAtomic(fs::path(dir) / "resolv.conf", resolv);
}

}  // namespace mercato::runtime::host
