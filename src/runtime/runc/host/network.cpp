#include "runtime/runc/host/network.hpp"
#include "runtime/runc/host/userns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/strings.hpp"
#include "common/subprocess.hpp"

namespace mercato::runtime::host {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool validName(const std::string& n, size_t maxLen) {
  if (n.empty() || n.size() > maxLen || n == "." || n == "..") return false;
  for (char c : n)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

Result<ProcessResult> run(std::vector<std::string> argv, int timeoutSeconds = 60) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = std::chrono::seconds(timeoutSeconds);
  return runProcess(spec);
}

struct Cidr {
  uint32_t addr = 0;  // host order
  int prefix = 0;
};

Result<Cidr> parseCidr(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos)
    return invalidArgument("'" + std::string(s) + "': expected a.b.c.d/n");
  std::string ip(s.substr(0, slash));
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1)
    return invalidArgument("'" + std::string(s) + "': bad IPv4 address");
  int prefix = 0;
  std::string_view p = s.substr(slash + 1);
  if (p.empty() || p.size() > 2) return invalidArgument("'" + std::string(s) + "': bad prefix");
  for (char c : p) {
    if (c < '0' || c > '9') return invalidArgument("'" + std::string(s) + "': bad prefix");
    prefix = prefix * 10 + (c - '0');
  }
  if (prefix > 32) return invalidArgument("'" + std::string(s) + "': bad prefix");
  return Cidr{ntohl(a.s_addr), prefix};
}

std::string formatIp(uint32_t hostOrder) {
  in_addr a{htonl(hostOrder)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

Status validateRequest(const NetworkAttachRequest& r) {
  if (!validName(r.containerId, 128))
    return invalidArgument("network: containerId '" + r.containerId + "'");
  if (!validName(r.netnsName, 64))
    return invalidArgument("network: netnsName '" + r.netnsName + "'");
  if (!validName(r.bridge, 15))
    return invalidArgument("network: bridge '" + r.bridge + "' (max 15 chars)");
  if (!validName(r.ifname, 15)) return invalidArgument("network: ifname '" + r.ifname + "'");
  if (r.ipamDataDir.empty() || r.ipamDataDir[0] != '/')
    return invalidArgument("network: ipamDataDir must be an absolute path");
  ASSIGN_OR_RETURN(Cidr c, parseCidr(r.subnet));
  if (c.prefix < 8 || c.prefix > 30)
    return invalidArgument("network: subnet '" + r.subnet + "': prefix must be 8..30");
  return Status::ok();
}

std::string bridgeConf(const NetworkAttachRequest& r) {
  json conf = {{"cniVersion", "1.0.0"},
               {"name", r.bridge},
               {"type", "bridge"},
               {"bridge", r.bridge},
               {"isGateway", true},
               // NAT is one rule per bridge (ensureMasquerade), not the plugin's per-container
               // chain: that cost ~20 ms of iptables calls on every instance start.
               {"ipMasq", false},
               {"hairpinMode", true},
               {"ipam",
                {{"type", "host-local"},
                 {"ranges", json::array({json::array({{{"subnet", r.subnet}}})})},
                 {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
                 {"dataDir", r.ipamDataDir}}}};
  return conf.dump();
}

std::string loopbackConf() {
  return json{{"cniVersion", "1.0.0"}, {"name", "mercato-lo"}, {"type", "loopback"}}.dump();
}

Result<ProcessResult> runCni(const NetworkAttachRequest& r, const std::string& plugin,
                             const std::string& command, const std::string& ifname,
                             const std::string& conf) {
  ProcessSpec spec;
  spec.argv = {r.cniPluginDir + "/" + plugin};
  std::string ns = netnsPath(r.netnsName);
  spec.env = {"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + r.containerId, "CNI_IFNAME=" + ifname,
              "CNI_PATH=" + r.cniPluginDir};
  // DEL of a deleted namespace: leave CNI_NETNS empty so the plugin only releases state.
  if (command != "DEL" || access(ns.c_str(), F_OK) == 0)
    spec.env.push_back("CNI_NETNS=" + ns);
  else
    spec.env.push_back("CNI_NETNS=");
  spec.stdinData = conf;
  spec.timeout = std::chrono::seconds(60);
  return runProcess(spec);
}

Status cniFailure(const std::string& what, const ProcessResult& r) {
  std::string detail = describeCniError(r.out);
  if (detail.empty()) detail = std::string(trimSpace(r.err));
  return internalError(what + ": " + r.describe() + (detail.empty() ? "" : ": " + detail));
}

Status writeSysctl(const std::string& path, const std::string& value) {
  std::ifstream in(path);
  std::string cur;
  in >> cur;
  if (cur == value) return Status::ok();
  std::ofstream out(path);
  out << value;
  out.flush();
  if (!out) return internalError("cannot set " + path + " = " + value);
  return Status::ok();
}

}  // namespace

std::string netnsPath(const std::string& name) { return std::string(kNetnsDir) + "/" + name; }

namespace {
// Held while a process changes host-wide state that another mercato process may change at the
// same moment (the /run/netns mount, the iptables chains). Released when destroyed. Opening or
// locking the file can only fail when /run is unusable; the work then goes ahead unlocked, as
// every step re-checks what it finds.
class HostLock {
 public:
  explicit HostLock(const char* path) : fd_(::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~HostLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }
  HostLock(const HostLock&) = delete;
  HostLock& operator=(const HostLock&) = delete;

 private:
  int fd_;
};

constexpr const char* kNetnsLock = "/run/mercato-netns.lock";
constexpr const char* kIsolationLock = "/run/mercato-isolation.lock";

std::mutex gNetnsDirMu;
bool gNetnsDirReady = false;  // guarded by gNetnsDirMu
std::atomic<bool> gPrepareNetnsDir{true};

enum class MountState { kNone, kPrivate, kShared };

// The propagation of the topmost mount at `dir` (a canonical path), from /proc/self/mountinfo:
// "36 35 98:0 /mnt1 /mnt2 rw,noatime shared:1 - ext3 /dev/root rw" (field 5 is the mount
// point, optional fields up to "-"). Later lines are mounted on top of earlier ones.
MountState mountStateOf(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  MountState state = MountState::kNone;
  while (std::getline(in, line)) {
    auto words = split(line, ' ');
    if (words.size() < 7 || words[4] != dir) continue;
    state = MountState::kPrivate;
    for (size_t i = 6; i < words.size() && words[i] != "-"; ++i)
      if (startsWith(words[i], "shared:")) state = MountState::kShared;
  }
  return state;
}
}  // namespace

void setPrepareNetnsDirForTesting(bool enabled) { gPrepareNetnsDir = enabled; }

// What iproute2's netns_add does before it creates a namespace file.
Status prepareNetnsDir() {
  std::lock_guard lock(gNetnsDirMu);
  if (gNetnsDirReady) return Status::ok();
  std::error_code ec;
  fs::create_directories(kNetnsDir, ec);
  if (ec) return internalError("create " + std::string(kNetnsDir) + ": " + ec.message());
  std::string dir = fs::canonical(kNetnsDir, ec).string();  // /var/run is usually -> /run
  if (ec) return internalError("resolve " + std::string(kNetnsDir) + ": " + ec.message());
  if (mountStateOf(dir) != MountState::kShared) {
    // Another mercato process (or `ip netns add`, which takes no lock) may be doing the same:
    // re-check under the lock. Two bind mounts stacked by a race with `ip` are harmless; what
    // must not happen is a namespace file mounted before the first one.
    HostLock hostLock(kNetnsLock);
    if (mountStateOf(dir) != MountState::kShared) {
      bool bound = false;
      while (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
        // EINVAL: not a mount point yet. Make it one (a bind mount of itself), then retry.
        if (errno != EINVAL || bound)
          return internalError("make " + dir + " a shared mount: " + strerror(errno));
        if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0)
          return internalError("bind-mount " + dir + " on itself: " + strerror(errno));
        bound = true;
      }
    }
  }
  gNetnsDirReady = true;
  return Status::ok();
}

// Like `ip netns add`, in-process (it is on the start-latency path and the exec cost ~3 ms): a
// short-lived thread unshares a network namespace and bind-mounts it onto
// /var/run/netns/<name>; the mount keeps the namespace alive after the thread ends.
Status createNetns(const std::string& name, const std::string& ownerUserns) {
  if (!validName(name, 64)) return invalidArgument("netns name '" + name + "'");
  const std::string path = netnsPath(name);
  if (gPrepareNetnsDir) RETURN_IF_ERROR(prepareNetnsDir());
  std::error_code ec;
  fs::create_directories(kNetnsDir, ec);
  if (ec) return internalError("create " + std::string(kNetnsDir) + ": " + ec.message());
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    if (errno == EEXIST) return alreadyExists("netns " + name + " exists");
    return internalError("create " + path + ": " + strerror(errno));
  }
  ::close(fd);
  if (!ownerUserns.empty()) {
    Status st = createNetnsInUserns(path, ownerUserns);
    if (!st.isOk()) ::unlink(path.c_str());
    return st;
  }
  std::string error;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      error = std::string("unshare(CLONE_NEWNET): ") + strerror(errno);
      return;
    }
    std::string self = "/proc/self/task/" + std::to_string(::gettid()) + "/ns/net";
    if (::mount(self.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0)
      error = "bind-mount " + self + " on " + path + ": " + strerror(errno);
  }).join();
  if (!error.empty()) {
    ::unlink(path.c_str());
    return internalError("create netns " + name + ": " + error);
  }
  return Status::ok();
}

Status deleteNetns(const std::string& name) {
  if (!validName(name, 64)) return invalidArgument("netns name '" + name + "'");
  if (access(netnsPath(name).c_str(), F_OK) != 0) return Status::ok();
  std::vector<std::string> argv = {"ip", "netns", "delete", name};
  ASSIGN_OR_RETURN(auto r, run(argv));
  if (!r.ok() && access(netnsPath(name).c_str(), F_OK) == 0)
    return processFailure("delete netns", argv, r);
  return Status::ok();
}

Result<std::vector<std::string>> listNetns() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kNetnsDir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string bridgeNameFor(std::string_view deploymentId) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : deploymentId) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", h);
  return std::string(kBridgePrefix) + buf;
}

Result<std::string> allocateSubnet(const std::vector<std::string>& used, std::string_view pool) {
  ASSIGN_OR_RETURN(Cidr p, parseCidr(pool));
  if (p.prefix < 8 || p.prefix > 24)
    return invalidArgument("subnet pool '" + std::string(pool) + "': prefix must be 8..24");
  std::set<uint32_t> taken;
  for (const auto& u : used) {
    auto c = parseCidr(u);
    if (c) taken.insert(c->addr & 0xffffff00u);
  }
  uint32_t mask = p.prefix == 0 ? 0 : ~uint32_t{0} << (32 - p.prefix);
  uint32_t base = p.addr & mask;
  uint64_t count = uint64_t{1} << (24 - p.prefix);
  for (uint64_t i = count > 1 ? 1 : 0; i < count; ++i) {
    uint32_t net = base + static_cast<uint32_t>(i << 8);
    if (!taken.count(net)) return formatIp(net) + "/24";
  }
  return resourceExhausted("subnet pool " + std::string(pool) + " has no free /24");
}

namespace {

// An IPv4 or IPv6 network, host bits cleared: what iptables prints after -d.
struct IpNet {
  bool v6 = false;
  std::string text;  // "10.0.0.0/8", "fd00::/8", "10.255.255.53/32"
};

// "a.b.c.d/n", "x:y::z/n", or an address alone (a /32 or /128) when !requirePrefix.
Result<IpNet> parseIpNet(std::string_view s, bool requirePrefix) {
  std::string in(trimSpace(s));
  auto slash = in.find('/');
  if (requirePrefix && slash == std::string::npos)
    return invalidArgument("'" + in + "': expected a CIDR (address/prefix)");
  if (!requirePrefix && slash != std::string::npos)
    return invalidArgument("'" + in + "': expected an address, not a CIDR");
  std::string addr = in.substr(0, slash);
  unsigned char bytes[16] = {};
  IpNet net;
  if (inet_pton(AF_INET, addr.c_str(), bytes) == 1) {
    net.v6 = false;
  } else if (inet_pton(AF_INET6, addr.c_str(), bytes) == 1) {
    net.v6 = true;
  } else {
    return invalidArgument("'" + in + "': not an IPv4 or IPv6 address");
  }
  const int maxPrefix = net.v6 ? 128 : 32;
  int prefix = maxPrefix;
  if (slash != std::string::npos) {
    std::string p = in.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit) ||
        std::stoi(p) > maxPrefix)
      return invalidArgument("'" + in + "': bad prefix length");
    prefix = std::stoi(p);
  }
  for (int bit = prefix; bit < maxPrefix; ++bit) bytes[bit / 8] &= ~(0x80 >> (bit % 8));
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(net.v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf);
  net.text = std::string(buf) + "/" + std::to_string(prefix);
  return net;
}

// One of iptables' and ip6tables' rule sets.
struct Family {
  bool v6;
  const char* name;     // for messages
  const char* save;     // prints every table
  const char* restore;  // --noflush applies a script atomically
};
constexpr Family kFamilies[2] = {{false, "iptables", "iptables-save", "iptables-restore"},
                                 {true, "ip6tables", "ip6tables-save", "ip6tables-restore"}};

// A rule in iptables-save form: its table and "-A CHAIN spec...".
struct Rule {
  std::string table;
  std::string line;
  bool operator<(const Rule& o) const { return std::tie(table, line) < std::tie(o.table, o.line); }
  bool operator==(const Rule& o) const = default;
};

// iptables-save output, parsed.
struct Ruleset {
  std::set<std::pair<std::string, std::string>> chains;  // (table, chain)
  std::vector<Rule> rules;

  bool hasChain(const std::string& table, const std::string& chain) const {
    return chains.count({table, chain}) > 0;
  }
  std::vector<std::string> chainRules(const std::string& table, const std::string& chain) const {
    std::vector<std::string> out;
    const std::string prefix = "-A " + chain + " ";
    for (const auto& r : rules)
      if (r.table == table && startsWith(r.line, prefix)) out.push_back(r.line);
    return out;
  }
};

Ruleset parseSave(const std::string& text) {
  Ruleset rs;
  std::string table;
  for (const auto& raw : split(text, '\n')) {
    std::string line(trimSpace(raw));
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '*') {
      table = line.substr(1);
    } else if (line[0] == ':') {
      rs.chains.insert({table, line.substr(1, line.find(' ') - 1)});
    } else if (startsWith(line, "-A ")) {
      rs.rules.push_back({table, line});
    }
  }
  return rs;
}

std::string joinRule(const std::string& chain, const std::vector<std::string>& spec) {
  std::string line = "-A " + chain;
  for (const auto& w : spec) line += " " + w;
  return line;
}

// The bridge a per-bridge rule belongs to ("" for none): `-i <bridge>` in one of the allow
// chains, or `! -o <bridge> -j MASQUERADE` in nat POSTROUTING.
std::string ownerOf(const Rule& r) {
  auto words = split(r.line, ' ');
  if (words.size() < 2) return "";
  auto valueOf = [&](const std::string& flag) -> std::string {
    for (size_t i = 0; i + 1 < words.size(); ++i)
      if (words[i] == flag) return words[i + 1];
    return "";
  };
  std::string bridge;
  if (r.table == "filter" && (words[1] == kEgressAllowChain || words[1] == kInputAllowChain))
    bridge = valueOf("-i");
  else if (r.table == "nat" && words[1] == "POSTROUTING" && valueOf("-j") == "MASQUERADE")
    bridge = valueOf("-o");
  if (!startsWith(bridge, kBridgePrefix) || bridge.back() == '+') return "";
  return bridge;
}

// What this process knows of the per-bridge rules, so that a deployment's first instance pays
// for one iptables-restore and later ones for none. Per family (0 = IPv4, 1 = IPv6).
struct FamilyState {
  bool loaded = false;    // a snapshot was taken
  bool available = true;  // the tools exist (false: logged once, nothing to filter)
  std::map<std::string, std::vector<Rule>> bridgeRules;  // as seen in the snapshot or installed
};
std::mutex gNetMu;
FamilyState gFamily[2];               // guarded by gNetMu
bool gIsolationReady = false;         // guarded by gNetMu
std::set<std::string> gBridgesReady;  // guarded by gNetMu

// Reads the family's whole rule set and refreshes what it knows of every bridge's rules. A
// missing or failing ip6tables marks IPv6 unavailable (there is then no IPv6 to filter);
// iptables missing is an error.
Result<Ruleset> snapshotLocked(const Family& f) {
  FamilyState& st = gFamily[f.v6];
  ProcessSpec spec;
  spec.argv = {f.save};
  spec.timeout = std::chrono::seconds(60);
  auto r = runProcess(spec);
  if (!r.isOk() || !r->ok()) {
    std::string why =
        r.isOk() ? r->describe() + ": " + std::string(trimSpace(r->err)) : r.status().message();
    if (!f.v6) return internalError(std::string(f.save) + ": " + why);
    if (st.available)
      spdlog::warn(
          "network: {} unusable ({}): IPv6 from instances is not filtered (their bridges carry "
          "only link-local IPv6)",
          f.save, why);
    st.available = false;
    st.loaded = true;
    return Ruleset{};
  }
  Ruleset rs = parseSave(r->out);
  st.bridgeRules.clear();
  for (const auto& rule : rs.rules)
    if (std::string b = ownerOf(rule); !b.empty()) st.bridgeRules[b].push_back(rule);
  st.loaded = true;
  st.available = true;
  return rs;
}

Status restoreLocked(const Family& f, const std::vector<Rule>& lines) {
  std::string script;
  for (const char* table : {"filter", "nat"}) {
    std::string body;
    for (const auto& l : lines)
      if (l.table == table) body += l.line + "\n";
    if (!body.empty()) script += "*" + std::string(table) + "\n" + body + "COMMIT\n";
  }
  if (script.empty()) return Status::ok();
  ProcessSpec spec;
  spec.argv = {f.restore, "-w", "--noflush"};
  spec.stdinData = script;
  spec.timeout = std::chrono::seconds(60);
  ASSIGN_OR_RETURN(auto r, runProcess(spec));
  if (!r.ok())
    return internalError(std::string(f.restore) + " failed: " + r.describe() + ": " +
                         std::string(trimSpace(r.err)) + "; script:\n" + script);
  return Status::ok();
}

// Replaces the bridge's rules of one family with `want` (empty: removes them), in one atomic
// iptables-restore. A rule that vanished behind our back fails the -D: re-read and retry once.
Status setBridgeRulesLocked(const Family& f, const std::string& bridge, std::vector<Rule> want) {
  FamilyState& st = gFamily[f.v6];
  std::sort(want.begin(), want.end());
  for (int attempt = 0;; ++attempt) {
    if (!st.loaded) RETURN_IF_ERROR(snapshotLocked(f).status());
    if (!st.available) return Status::ok();
    std::vector<Rule> have = st.bridgeRules[bridge];
    std::sort(have.begin(), have.end());
    if (have == want) break;
    std::vector<Rule> script;
    for (const auto& h : have) script.push_back({h.table, "-D" + h.line.substr(2)});
    script.insert(script.end(), want.begin(), want.end());
    Status s = restoreLocked(f, script);
    if (s.isOk()) break;
    st.loaded = false;
    if (attempt == 1) return s.withContext("rules of bridge " + bridge);
  }
  if (want.empty())
    st.bridgeRules.erase(bridge);
  else
    st.bridgeRules[bridge] = std::move(want);
  return Status::ok();
}

// The destinations dropped by default: private, CGNAT and link-local ranges (the host's own
// addresses are matched by addrtype).
const std::vector<std::string>& blockedRanges(bool v6) {
  static const std::vector<std::string> v4 = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                              "169.254.0.0/16", "100.64.0.0/10"};
  static const std::vector<std::string> v6Ranges = {"fc00::/7", "fe80::/10"};
  return v6 ? v6Ranges : v4;
}

std::vector<std::string> validatedAddresses(const std::vector<std::string>& in, bool cidr,
                                            const std::string& field, Status* error) {
  std::vector<std::string> out;
  for (size_t i = 0; i < in.size(); ++i) {
    auto n = parseIpNet(in[i], cidr);
    if (!n.isOk()) {
      if (error->isOk())
        *error = invalidArgument(field + "[" + std::to_string(i) + "]: " + n.status().message());
      continue;
    }
    out.push_back(in[i]);
  }
  return out;
}

}  // namespace

Status checkNetworkPolicy(const std::vector<std::string>& egressAllow,
                          const std::vector<std::string>& nameservers) {
  Status error;
  (void)validatedAddresses(egressAllow, true, "sandbox.egress.allow", &error);
  (void)validatedAddresses(nameservers, false, "sandbox.nameservers", &error);
  return error;
}

ResolvConf hostResolvConf(const std::string& path) {
  ResolvConf rc;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key, val;
    ls >> key >> val;
    if (key == "nameserver" && !val.empty() && !startsWith(val, "127.") && val != "::1") {
      rc.nameservers.push_back(val);
    } else if (key == "search" && rc.search.empty() && !val.empty()) {
      rc.search.push_back(val);
      while (ls >> val) rc.search.push_back(val);
    }
  }
  if (rc.nameservers.empty()) rc.nameservers = {"1.1.1.1", "8.8.8.8"};
  return rc;
}

std::vector<std::vector<std::string>> isolationRules(bool ipv6) {
  const std::string all = std::string(kBridgePrefix) + "+";
  std::vector<std::vector<std::string>> rules = {
      // Frames switched inside one bridge (seen here because br_netfilter is loaded): one
      // deployment's instances reach each other.
      {"-i", all, "-o", all, "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"},
      // Anything routed from one mercato bridge to another: a different deployment.
      {"-i", all, "-o", all, "-j", "DROP"},
      // Replies to connections the instances opened...
      {"-o", all, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
      // ...and nothing else into a bridge through the host's routing: only the host itself
      // (OUTPUT, not FORWARD) opens connections to instances.
      {"-o", all, "-j", "DROP"},
      // The deployment's own exceptions: its nameservers, the provider's allow-list.
      {"-i", all, "-j", kEgressAllowChain},
  };
  for (const auto& range : blockedRanges(ipv6))
    rules.push_back({"-d", range, "-i", all, "-j", "DROP"});
  // The host's own addresses (routed to INPUT, so this catches only the odd forwarded case).
  rules.push_back({"-i", all, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DROP"});
  // Outbound to the internet (masqueraded, see ensureBridgeRules).
  rules.push_back({"-i", all, "-j", "ACCEPT"});
  return rules;
}

std::vector<std::vector<std::string>> inputRules(bool /*ipv6*/) {
  const std::string all = std::string(kBridgePrefix) + "+";
  return {
      // Replies to the host's own connections into instances (the facade proxies to them).
      {"-i", all, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
      // What the provider offers on the host (DNS on a nameserver of its own), per bridge.
      {"-i", all, "-j", kInputAllowChain},
      // Every other host listener, on any address (gateway IPs, other bridges, eth0).
      {"-i", all, "-j", "DROP"},
  };
}

Status ensureIsolation() {
  std::lock_guard lock(gNetMu);
  if (gIsolationReady) return Status::ok();
  // Several mercato processes (parallel tests, a restarting daemon) may check and rebuild the
  // chains at once: serialize them host-wide, or two rebuilds would interleave.
  HostLock hostLock(kIsolationLock);
  for (const Family& f : kFamilies) {
    ASSIGN_OR_RETURN(Ruleset rs, snapshotLocked(f));
    if (!gFamily[f.v6].available) continue;
    std::vector<Rule> script;
    // The per-bridge chains are created empty once and never flushed: they hold the rules of
    // every process's bridges.
    for (const char* chain : {kEgressAllowChain, kInputAllowChain})
      if (!rs.hasChain("filter", chain))
        script.push_back({"filter", ":" + std::string(chain) + " - [0:0]"});
    // The constant chains must be exactly these rules, in this order. Declaring an existing
    // chain in the script flushes it, and the whole script applies atomically: the rules never
    // lapse while they are rebuilt.
    for (const auto& [chain, rules] : {std::pair{kIsolationChain, isolationRules(f.v6)},
                                       std::pair{kInputChain, inputRules(f.v6)}}) {
      std::vector<std::string> want;
      for (const auto& spec : rules) want.push_back(joinRule(chain, spec));
      if (rs.hasChain("filter", chain) && rs.chainRules("filter", chain) == want) continue;
      script.push_back({"filter", ":" + std::string(chain) + " - [0:0]"});
      for (auto& w : want) script.push_back({"filter", std::move(w)});
    }
    for (const auto& [builtin, chain] :
         {std::pair{"FORWARD", kIsolationChain}, std::pair{"INPUT", kInputChain}}) {
      auto rules = rs.chainRules("filter", builtin);
      std::string jump = joinRule(builtin, {"-j", chain});
      if (std::find(rules.begin(), rules.end(), jump) == rules.end())
        script.push_back({"filter", "-I " + std::string(builtin) + " 1 -j " + chain});
    }
    if (Status s = restoreLocked(f, script); !s.isOk())
      return s.withContext(std::string(f.name) + ": host-wide isolation chains");
  }
  gIsolationReady = true;
  return Status::ok();
}

Status ensureBridgeRules(const NetworkAttachRequest& r) {
  if (!validName(r.bridge, 15)) return invalidArgument("bridge '" + r.bridge + "'");
  ASSIGN_OR_RETURN(IpNet subnet, parseIpNet(r.subnet, true));
  if (subnet.v6) return invalidArgument("network: subnet '" + r.subnet + "' must be IPv4");
  std::lock_guard lock(gNetMu);
  if (gBridgesReady.count(r.bridge)) return Status::ok();
  RETURN_IF_ERROR(checkNetworkPolicy(r.egressAllow, r.nameservers));
  std::vector<std::string> nameservers =
      r.nameservers.empty() ? hostResolvConf().nameservers : r.nameservers;
  std::vector<Rule> want[2];
  want[0].push_back({"nat", joinRule("POSTROUTING", {"-s", subnet.text, "!", "-o", r.bridge, "-j",
                                                     "MASQUERADE"})});
  for (const auto& ns : nameservers) {
    auto n = parseIpNet(ns, false);
    if (!n.isOk()) continue;  // the host's resolv.conf may hold a scoped fe80::1%eth0
    for (const char* chain : {kEgressAllowChain, kInputAllowChain})
      for (const char* proto : {"tcp", "udp"})
        want[n->v6].push_back(
            {"filter", joinRule(chain, {"-d", n->text, "-i", r.bridge, "-p", proto, "-m", proto,
                                        "--dport", "53", "-j", "ACCEPT"})});
  }
  for (const auto& cidr : r.egressAllow) {
    auto n = parseIpNet(cidr, true);
    want[n->v6].push_back(
        {"filter", joinRule(kEgressAllowChain, {"-d", n->text, "-i", r.bridge, "-j", "ACCEPT"})});
  }
  HostLock hostLock(kIsolationLock);
  for (const Family& f : kFamilies)
    RETURN_IF_ERROR(setBridgeRulesLocked(f, r.bridge, std::move(want[f.v6])));
  gBridgesReady.insert(r.bridge);
  return Status::ok();
}

namespace {
// Removes every rule of the bridge, from a fresh snapshot (another process with the same data
// dir, or an older one that crashed, may have installed some since ours).
Status removeBridgeRules(const std::string& bridge) {
  std::lock_guard lock(gNetMu);
  gBridgesReady.erase(bridge);
  HostLock hostLock(kIsolationLock);
  for (const Family& f : kFamilies) {
    gFamily[f.v6].loaded = false;
    RETURN_IF_ERROR(setBridgeRulesLocked(f, bridge, {}));
  }
  return Status::ok();
}
}  // namespace

std::vector<std::string> listBridges(const std::string& ipamDataDir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ipamDataDir, ec)) {
    std::string name = e.path().filename().string();
    if (startsWith(name, kBridgePrefix) && validName(name, 15)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string describeCniError(std::string_view output) {
  json j = json::parse(output, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::string(trimSpace(output)).substr(0, 4000);
  std::string msg;
  if (auto it = j.find("code"); it != j.end() && it->is_number_integer())
    msg = "CNI error " + std::to_string(it->get<int64_t>());
  if (auto it = j.find("msg"); it != j.end() && it->is_string())
    msg += (msg.empty() ? "" : ": ") + it->get<std::string>();
  if (auto it = j.find("details");
      it != j.end() && it->is_string() && !it->get<std::string>().empty())
    msg += " (" + it->get<std::string>() + ")";
  return msg.substr(0, 4000);
}

Result<NetworkAttachment> parseCniResult(std::string_view text, const std::string& bridge) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return internalError("CNI result: not a JSON object");
  NetworkAttachment a;
  a.cniResult = std::string(text);
  auto ifaces = j.find("interfaces");
  auto ips = j.find("ips");
  if (ips == j.end() || !ips->is_array() || ips->empty())
    return internalError("CNI result: no \"ips\"");
  const json* ifArr = (ifaces != j.end() && ifaces->is_array()) ? &*ifaces : nullptr;
  int containerIdx = -1;
  if (ifArr) {
    for (size_t i = 0; i < ifArr->size(); ++i) {
      const json& f = (*ifArr)[i];
      if (!f.is_object()) continue;
      std::string name = f.value("name", std::string());
      std::string sandbox =
          f.contains("sandbox") && f["sandbox"].is_string() ? f["sandbox"].get<std::string>() : "";
      if (!sandbox.empty()) {
        if (containerIdx < 0) containerIdx = static_cast<int>(i);
      } else if (name != bridge && a.hostVeth.empty()) {
        a.hostVeth = name;
      }
    }
  }
  // The IPv4 address on the container's interface (or the first IPv4 if none is tagged).
  for (const auto& ip : *ips) {
    if (!ip.is_object()) continue;
    auto addr = ip.find("address");
    if (addr == ip.end() || !addr->is_string()) continue;
    auto c = parseCidr(addr->get<std::string>());
    if (!c) continue;
    if (auto it = ip.find("interface"); it != ip.end() && it->is_number_integer() &&
                                        containerIdx >= 0 && it->get<int64_t>() != containerIdx)
      continue;
    std::string s = addr->get<std::string>();
    a.containerIp = s.substr(0, s.find('/'));
    a.prefixLength = c->prefix;
    if (auto gw = ip.find("gateway"); gw != ip.end() && gw->is_string())
      a.gateway = gw->get<std::string>();
    break;
  }
  if (a.containerIp.empty()) return internalError("CNI result: no IPv4 address for the container");
  if (ifArr && containerIdx >= 0) {
    const json& f = (*ifArr)[static_cast<size_t>(containerIdx)];
    if (f.contains("mac") && f["mac"].is_string()) a.containerMac = f["mac"].get<std::string>();
  }
  return a;
}

Result<NetworkAttachment> attach(const NetworkAttachRequest& r) {
  RETURN_IF_ERROR(validateRequest(r));
  RETURN_IF_ERROR(checkNetworkPolicy(r.egressAllow, r.nameservers));
  if (access(netnsPath(r.netnsName).c_str(), F_OK) != 0)
    return notFound("network: netns " + r.netnsName + " does not exist");
  std::error_code ec;
  fs::create_directories(r.ipamDataDir, ec);
  if (ec) return internalError("network: create " + r.ipamDataDir + ": " + ec.message());
  RETURN_IF_ERROR(writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"));

  ASSIGN_OR_RETURN(auto lo, runCni(r, "loopback", "ADD", "lo", loopbackConf()));
  if (!lo.ok()) return cniFailure("CNI loopback ADD for " + r.containerId, lo);
  ASSIGN_OR_RETURN(auto br, runCni(r, "bridge", "ADD", r.ifname, bridgeConf(r)));
  if (!br.ok()) return cniFailure("CNI bridge ADD for " + r.containerId + " on " + r.bridge, br);
  auto parsed = parseCniResult(br.out, r.bridge);
  if (!parsed) {
    (void)detach(r);
    return parsed.status();
  }
  if (Status st = ensureIsolation(); !st.isOk()) {
    (void)detach(r);
    return st;
  }
  if (Status st = ensureBridgeRules(r); !st.isOk()) {
    (void)detach(r);
    return st;
  }
  return parsed;
}

Status detach(const NetworkAttachRequest& r) {
  RETURN_IF_ERROR(validateRequest(r));
  ASSIGN_OR_RETURN(auto br, runCni(r, "bridge", "DEL", r.ifname, bridgeConf(r)));
  if (!br.ok()) return cniFailure("CNI bridge DEL for " + r.containerId, br);
  if (access(netnsPath(r.netnsName).c_str(), F_OK) == 0) {
    ASSIGN_OR_RETURN(auto lo, runCni(r, "loopback", "DEL", "lo", loopbackConf()));
    if (!lo.ok()) return cniFailure("CNI loopback DEL for " + r.containerId, lo);
  }
  return Status::ok();
}

Status removeBridge(const std::string& bridge, const std::string& ipamDataDir) {
  if (!validName(bridge, 15)) return invalidArgument("bridge '" + bridge + "'");
  if (fs::exists("/sys/class/net/" + bridge)) {
    std::vector<std::string> argv = {"ip", "link", "delete", bridge};
    ASSIGN_OR_RETURN(auto r, run(argv));
    if (!r.ok() && fs::exists("/sys/class/net/" + bridge))
      return processFailure("delete bridge", argv, r);
  }
  RETURN_IF_ERROR(removeBridgeRules(bridge));
  if (!ipamDataDir.empty()) {
    std::error_code ec;
    fs::remove_all(fs::path(ipamDataDir) / bridge, ec);
    if (ec) return internalError("remove " + ipamDataDir + "/" + bridge + ": " + ec.message());
  }
  return Status::ok();
}

}  // namespace mercato::runtime::host
