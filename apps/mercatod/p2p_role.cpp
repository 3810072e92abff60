#include "mercatod/p2p_role.hpp"

#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/config.hpp"
#include "runtime/runtime.hpp"

namespace mercato::node {

namespace {

Status stringList(const YAML::Node& parent, const char* key, const std::string& origin,
                  std::vector<std::string>& out) {
  if (!parent.IsMap() || !parent[key]) return Status::ok();
  const YAML::Node list = parent[key];
  if (!list.IsSequence())
    return invalidArgument(yamlWhere(origin, list) + "p2p." + key + ": expected a list");
  out.clear();
  for (const auto& item : list) {
    if (!item.IsScalar())
      return invalidArgument(yamlWhere(origin, item) + "p2p." + key + ": expected strings");
    out.push_back(item.as<std::string>());
  }
  return Status::ok();
}

// kB figures from /proc/meminfo.
void memInfo(int64_t& total, int64_t& available) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string key;
    int64_t kb = 0;
    ss >> key >> kb;
    if (key == "MemTotal:") total = kb * 1024;
    if (key == "MemAvailable:") available = kb * 1024;
  }
}

double loadAverage() {
  std::ifstream in("/proc/loadavg");
  double l = 0;
  in >> l;
  return l;
}

}  // namespace

Status loadP2pRoleConfig(const YAML::Node& n, const std::string& origin, P2pRoleConfig& c) {
  if (!n || n.IsNull()) return Status::ok();
  RETURN_IF_ERROR(yamlOnlyKeys(n,
                               {"enabled", "listen", "advertise", "initialNodes", "maxPingMs",
                                "pingPeriodMs", "pingTimeoutMs", "minKnown", "summaryPeriodMs",
                                "publicNetwork", "networks", "name", "ratePerSec", "burst"},
                               "p2p", origin));
  ASSIGN_OR_RETURN(c.enabled, yamlBool(n, "enabled", "p2p", origin, c.enabled));
  ASSIGN_OR_RETURN(c.listen, yamlString(n, "listen", "p2p", origin, c.listen));
  RETURN_IF_ERROR(stringList(n, "advertise", origin, c.advertise));
  RETURN_IF_ERROR(stringList(n, "initialNodes", origin, c.initialNodes));
  RETURN_IF_ERROR(stringList(n, "networks", origin, c.networks));
  ASSIGN_OR_RETURN(c.maxPingMs, yamlInt(n, "maxPingMs", "p2p", origin, c.maxPingMs));
  ASSIGN_OR_RETURN(c.pingPeriodMs, yamlInt(n, "pingPeriodMs", "p2p", origin, c.pingPeriodMs));
  ASSIGN_OR_RETURN(c.pingTimeoutMs, yamlInt(n, "pingTimeoutMs", "p2p", origin, c.pingTimeoutMs));
  ASSIGN_OR_RETURN(c.minKnown, yamlInt(n, "minKnown", "p2p", origin, c.minKnown));
  if (c.minKnown < 1) return invalidArgument(origin + ": p2p.minKnown: expected >= 1");
  ASSIGN_OR_RETURN(c.summaryPeriodMs,
                   yamlInt(n, "summaryPeriodMs", "p2p", origin, c.summaryPeriodMs));
  ASSIGN_OR_RETURN(c.publicNetwork, yamlBool(n, "publicNetwork", "p2p", origin, c.publicNetwork));
  ASSIGN_OR_RETURN(c.name, yamlString(n, "name", "p2p", origin, c.name));
  ASSIGN_OR_RETURN(c.ratePerSec, yamlInt(n, "ratePerSec", "p2p", origin, c.ratePerSec));
  ASSIGN_OR_RETURN(c.burst, yamlInt(n, "burst", "p2p", origin, c.burst));
  if (c.maxPingMs < 1) return invalidArgument(origin + ": p2p.maxPingMs: expected >= 1");
  if (c.pingPeriodMs < 10) return invalidArgument(origin + ": p2p.pingPeriodMs: expected >= 10");
  if (c.ratePerSec < 1 || c.burst < 1)
    return invalidArgument(origin + ": p2p.ratePerSec and p2p.burst: expected >= 1");
  return Status::ok();
}

std::function<nlohmann::json()> makeLocalSummary(LocalNodeInfo info) {
  return [info] {
    const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
    int64_t memTotal = 0, memFree = 0;
    memInfo(memTotal, memFree);
    struct statvfs fs {};
    int64_t diskTotal = 0, diskFree = 0;
    if (::statvfs(info.dataDir.c_str(), &fs) == 0) {
      diskTotal = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
      diskFree = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
    }
    const int64_t freeMillicores = std::max<int64_t>(
        0, cores * 1000 - static_cast<int64_t>(std::lround(loadAverage() * 1000)));
    struct utsname un {};
    ::uname(&un);
    nlohmann::json caps = {
        {"cpu", {{"totalMillicores", cores * 1000}, {"freeMillicores", freeMillicores}}},
        {"memory", {{"total", memTotal}, {"free", memFree}}},
        {"disk", {{"total", diskTotal}, {"free", diskFree}}},
        {"arch", un.machine},
        {"os", un.sysname},
        {"runtimes", nlohmann::json::array()},
        {"traits", nlohmann::json::array()}};
    nlohmann::json components = nlohmann::json::array();
    if (info.runtime) {
      const runtime::Capabilities rc = info.runtime->capabilities();
      caps["runtimes"].push_back(rc.backend);
      // What the backend can do for a component, as the trait names placement will match.
      for (auto [on, trait] : {std::pair<bool, const char*>{rc.scaleToZero, "scale-to-zero"},
                               {rc.exec, "exec"},
                               {rc.networkIsolation, "network-isolation"},
                               {rc.gpu, "gpu"},
                               {rc.jobs, "jobs"}})
        if (on) caps["traits"].push_back(trait);
      if (auto list = info.runtime->list(); list.isOk()) {
        for (const auto& d : *list) {
          for (const auto& s : d.services) {
            components.push_back({{"deployment", d.id},
                                  {"service", s.name},
                                  {"image", s.imageDigest},
                                  {"replicas", s.replicas},
                                  {"ready", s.ready},
                                  {"state", d.state}});
          }
        }
      }
    }
    nlohmann::json prices = nullptr;
    if (info.prices) {
      prices = {{"cpuSecond", info.prices->cpuSecond},
                {"memGibSecond", info.prices->memGibSecond},
                {"egressGib", info.prices->egressGib},
                {"requests1k", info.prices->requests1k}};
    }
    if (info.prices) {
      caps["traits"].push_back("http-facade");  // providers front apps with the facade
      caps["traits"].push_back("metering");
    }
    if (info.capacity) {
      caps["offered"] = {{"cpuMillicores", info.capacity->cpu},
                         {"memory", info.capacity->memory},
                         {"storage", info.capacity->storage}};
    }
    return nlohmann::json{{"capabilities", caps}, {"prices", prices}, {"components", components}};
  };
}

void addP2pFlags(CLI::App& app, P2pFlags& f) {
  app.add_flag("--p2p", f.enable, "Run the p2p role: identity, networks, discovery (docs/p2p.md)");
  app.add_option("--p2p-listen", f.listen, "UDP ip:port for p2p (default 0.0.0.0:7401)");
  app.add_option("--initial-node", f.initialNodes,
                 "p2p initial node, ip:port or PEERID@ip:port (repeatable)");
  app.add_option("--max-ping", f.maxPingMs, "p2p: keep the nodes within this RTT, in ms");
  app.add_option("--ping-period", f.pingPeriodMs, "p2p: discovery round period, in ms");
}

void applyP2pFlags(const P2pFlags& f, bool dev, P2pRoleConfig& c) {
  if (dev && !c.enabled) {
    c.enabled = true;
    c.listen = "127.0.0.1:0";
    c.initialNodes.clear();
  }
  const bool any = f.enable || !f.listen.empty() || !f.initialNodes.empty() || f.maxPingMs > 0 ||
                   f.pingPeriodMs > 0;
  if (any) c.enabled = true;
  if (!f.listen.empty()) c.listen = f.listen;
  if (!f.initialNodes.empty()) c.initialNodes = f.initialNodes;
  if (f.maxPingMs > 0) c.maxPingMs = f.maxPingMs;
  if (f.pingPeriodMs > 0) c.pingPeriodMs = f.pingPeriodMs;
}

Result<std::unique_ptr<p2p::P2pService>> createP2pRole(
    const P2pRoleConfig& c, const std::string& dataDir, std::vector<std::string> roles,
    LocalNodeInfo info, const crypto::Identity& identity, Clock& clock, MetricsRegistry* metrics) {
  p2p::P2pConfig pc;
  pc.transport.listen = c.listen;
  pc.transport.ratePerSec = static_cast<double>(c.ratePerSec);
  pc.transport.burst = static_cast<double>(c.burst);
  pc.advertise = c.advertise;
  pc.initialNodes = c.initialNodes;
  pc.maxPingMs = c.maxPingMs;
  pc.pingPeriodMs = c.pingPeriodMs;
  pc.pingTimeoutMs = c.pingTimeoutMs;
  pc.minKnown = static_cast<size_t>(c.minKnown);
  pc.summaryPeriodMs = std::max(c.summaryPeriodMs, c.pingPeriodMs);
  pc.publicNetwork = c.publicNetwork;
  pc.networkKeys = c.networks;
  pc.dataDir = dataDir + "/p2p";
  pc.defaultName = c.name;
  roles.push_back("p2p");
  pc.roles = std::move(roles);
  pc.localSummary = makeLocalSummary(std::move(info));
  return p2p::P2pService::create(std::move(pc), identity, clock, metrics);
}

}  // namespace mercato::node
