#include "runtime/runc/host/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

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

std::vector<std::string> iptables(std::vector<std::string> args) {
  std::vector<std::string> argv = {"iptables", "-w", "-t", "filter"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
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

// Like `ip netns add`, in-process (it is on the start-latency path and the exec cost ~3 ms): a
// short-lived thread unshares a network namespace and bind-mounts it onto
// /var/run/netns/<name>; the mount keeps the namespace alive after the thread ends.
Status createNetns(const std::string& name) {
  if (!validName(name, 64)) return invalidArgument("netns name '" + name + "'");
  const std::string path = netnsPath(name);
  std::error_code ec;
  fs::create_directories(kNetnsDir, ec);
  if (ec) return internalError("create " + std::string(kNetnsDir) + ": " + ec.message());
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    if (errno == EEXIST) return alreadyExists("netns " + name + " exists");
    return internalError("create " + path + ": " + strerror(errno));
  }
  ::close(fd);
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

std::vector<std::vector<std::string>> isolationRules() {
  std::string all = std::string(kBridgePrefix) + "+";
  return {
      // Frames switched inside one bridge (seen here because br_netfilter is loaded): one
      // deployment's instances reach each other.
      {"-i", all, "-o", all, "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"},
      // Anything routed from one mercato bridge to another: a different deployment.
      {"-i", all, "-o", all, "-j", "DROP"},
      // Outbound to anywhere else (masqueraded, see ensureMasquerade).
      {"-i", all, "-j", "ACCEPT"},
      // Replies to connections the instances opened.
      {"-o", all, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
  };
}

namespace {
// What this process has already installed, so that only the first instance pays for iptables.
// A rule removed behind our back is restored by the next process start (recovery), not here.
std::mutex gNetMu;
bool gIsolationReady = false;
std::set<std::string> gMasqueraded;  // bridges

std::vector<std::string> masqueradeRule(const std::string& bridge, const std::string& subnet) {
  return {"POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"};
}

std::vector<std::string> natIptables(std::vector<std::string> args) {
  std::vector<std::string> argv = {"iptables", "-w", "-t", "nat"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}
}  // namespace

Status ensureIsolation() {
  std::lock_guard lock(gNetMu);
  if (gIsolationReady) return Status::ok();
  // Several mercato processes (parallel tests, a restarting daemon) may check and rebuild the
  // chain at once: serialize them host-wide, or two rebuilds would interleave.
  int lockFd = ::open("/run/mercato-isolation.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockFd >= 0) ::flock(lockFd, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) ::close(fd);  // releases the flock
    }
  } unlock{lockFd};
  // The chain, and the jump to it at the top of FORWARD.
  ASSIGN_OR_RETURN(auto list, run(iptables({"-n", "-L", kIsolationChain})));
  if (!list.ok()) {
    auto argv = iptables({"-N", kIsolationChain});
    ASSIGN_OR_RETURN(auto r, run(argv));
    if (!r.ok() && r.err.find("already exists") == std::string::npos)
      return processFailure("iptables: create chain", argv, r);
  }
  ASSIGN_OR_RETURN(auto jump, run(iptables({"-C", "FORWARD", "-j", kIsolationChain})));
  if (!jump.ok()) {
    auto argv = iptables({"-I", "FORWARD", "1", "-j", kIsolationChain});
    ASSIGN_OR_RETURN(auto r, run(argv));
    if (!r.ok())
      return processFailure("iptables: jump to " + std::string(kIsolationChain), argv, r);
  }
  // The rules must be exactly these, in this order: rebuild the chain when it differs.
  ASSIGN_OR_RETURN(auto current, run(iptables({"-S", kIsolationChain})));
  std::string want = "-N " + std::string(kIsolationChain) + "\n";
  for (const auto& rule : isolationRules()) {
    want += "-A " + std::string(kIsolationChain);
    for (const auto& a : rule) want += " " + a;
    want += "\n";
  }
  if (current.out != want) {
    auto flush = iptables({"-F", kIsolationChain});
    ASSIGN_OR_RETURN(auto f, run(flush));
    if (!f.ok()) return processFailure("iptables: flush " + std::string(kIsolationChain), flush, f);
    for (const auto& rule : isolationRules()) {
      std::vector<std::string> add = {"-A", kIsolationChain};
      add.insert(add.end(), rule.begin(), rule.end());
      auto argv = iptables(add);
      ASSIGN_OR_RETURN(auto r, run(argv));
      if (!r.ok()) return processFailure("iptables: isolation rule", argv, r);
    }
  }
  gIsolationReady = true;
  return Status::ok();
}

Status ensureMasquerade(const std::string& bridge, const std::string& subnet) {
  if (!validName(bridge, 15)) return invalidArgument("bridge '" + bridge + "'");
  std::lock_guard lock(gNetMu);
  if (gMasqueraded.count(bridge)) return Status::ok();
  auto rule = masqueradeRule(bridge, subnet);
  std::vector<std::string> check = {"-C"};
  check.insert(check.end(), rule.begin(), rule.end());
  ASSIGN_OR_RETURN(auto c, run(natIptables(check)));
  if (!c.ok()) {
    std::vector<std::string> add = {"-A"};
    add.insert(add.end(), rule.begin(), rule.end());
    auto argv = natIptables(add);
    ASSIGN_OR_RETURN(auto r, run(argv));
    if (!r.ok()) return processFailure("iptables: masquerade for " + bridge, argv, r);
  }
  gMasqueraded.insert(bridge);
  return Status::ok();
}

Status removeMasquerade(const std::string& bridge) {
  if (!validName(bridge, 15)) return invalidArgument("bridge '" + bridge + "'");
  std::lock_guard lock(gNetMu);
  gMasqueraded.erase(bridge);
  ASSIGN_OR_RETURN(auto rules, run(natIptables({"-S", "POSTROUTING"})));
  for (const auto& line : split(rules.out, '\n')) {
    // "-A POSTROUTING -s 10.89.3.0/24 ! -o mcb-1234abcd -j MASQUERADE"
    if (line.find("! -o " + bridge + " ") == std::string::npos) continue;
    auto words = split(line, ' ');
    if (words.empty() || words[0] != "-A") continue;
    words[0] = "-D";
    ASSIGN_OR_RETURN(auto r, run(natIptables(words)));
    (void)r;
  }
  return Status::ok();
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
  if (Status st = ensureMasquerade(r.bridge, r.subnet); !st.isOk()) {
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
  RETURN_IF_ERROR(removeMasquerade(bridge));
  if (!ipamDataDir.empty()) {
    std::error_code ec;
    fs::remove_all(fs::path(ipamDataDir) / bridge, ec);
    if (ec) return internalError("remove " + ipamDataDir + "/" + bridge + ": " + ec.message());
  }
  return Status::ok();
}

}  // namespace mercato::runtime::host
