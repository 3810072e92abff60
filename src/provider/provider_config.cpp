#include "provider/provider_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/config.hpp"
#include "common/money.hpp"
#include "common/units.hpp"

namespace mercato::provider {

namespace {

Result<std::string> scalar(const YAML::Node& parent, const char* key, const std::string& path,
                           const std::string& origin) {
  return yamlString(parent, key, path, origin, "");
}

// A section that is absent reads as an empty mapping (yaml-cpp throws on lookups in a missing
// node).
YAML::Node section(const YAML::Node& root, const char* key) {
  YAML::Node n = root[key];
  return n.IsDefined() && !n.IsNull() ? n : YAML::Node(YAML::NodeType::Map);
}

Result<ProviderConfig> fromYamlUnchecked(const YAML::Node& root, const std::string& origin) {
  ProviderConfig c;
  if (!root.IsDefined() || root.IsNull()) return c;
  RETURN_IF_ERROR(yamlOnlyKeys(
      root,
      {"gateway", "facade", "attributes", "capacity", "prices", "backend", "claimIntervalSeconds",
       "gracePeriodSeconds", "maxBundleBytes", "bidding", "sandbox"},
      "", origin));
  YAML::Node gw = section(root, "gateway");
  RETURN_IF_ERROR(yamlOnlyKeys(
      gw,
      {"listen", "url", "execMaxSessions", "execMaxSessionsPerPublisher", "execIdleTimeoutSeconds"},
      "gateway", origin));
  ASSIGN_OR_RETURN(c.gatewayListen, yamlString(gw, "listen", "gateway", origin, c.gatewayListen));
  ASSIGN_OR_RETURN(c.gatewayUrl, yamlString(gw, "url", "gateway", origin, c.gatewayUrl));
  ASSIGN_OR_RETURN(c.execMaxSessions,
                   yamlInt(gw, "execMaxSessions", "gateway", origin, c.execMaxSessions));
  ASSIGN_OR_RETURN(
      c.execMaxSessionsPerPublisher,
      yamlInt(gw, "execMaxSessionsPerPublisher", "gateway", origin, c.execMaxSessionsPerPublisher));
  if (c.execMaxSessionsPerPublisher < 1)
    return invalidArgument(origin + ": gateway: execMaxSessionsPerPublisher must be >= 1");
  ASSIGN_OR_RETURN(int64_t execIdleS, yamlInt(gw, "execIdleTimeoutSeconds", "gateway", origin,
                                              c.execIdleTimeoutMs / 1000));
  if (c.execMaxSessions < 0 || execIdleS < 1)
    return invalidArgument(
        origin + ": gateway: execMaxSessions must be >= 0 and execIdleTimeoutSeconds >= 1");
  c.execIdleTimeoutMs = execIdleS * 1000;
  YAML::Node fc = section(root, "facade");
  RETURN_IF_ERROR(yamlOnlyKeys(fc, {"listen", "domain", "url"}, "facade", origin));
  ASSIGN_OR_RETURN(c.facadeListen, yamlString(fc, "listen", "facade", origin, c.facadeListen));
  ASSIGN_OR_RETURN(c.facadeDomain, yamlString(fc, "domain", "facade", origin, c.facadeDomain));
  ASSIGN_OR_RETURN(c.facadeUrl, yamlString(fc, "url", "facade", origin, c.facadeUrl));

  YAML::Node attrs = root["attributes"];
  if (attrs.IsDefined() && !attrs.IsNull()) {
    if (!attrs.IsMap())
      return invalidArgument(yamlWhere(origin, attrs) + "attributes: expected a mapping");
    for (auto it = attrs.begin(); it != attrs.end(); ++it)
      c.attributes[it->first.as<std::string>()] = it->second.as<std::string>();
  }
  YAML::Node sb = section(root, "sandbox");
  RETURN_IF_ERROR(yamlOnlyKeys(
      sb, {"seccomp", "egress", "nameservers", "userNamespaces", "diskQuotas", "defaultStorage"},
      "sandbox", origin));
  YAML::Node sc = section(sb, "seccomp");
  RETURN_IF_ERROR(yamlOnlyKeys(sc, {"allow"}, "sandbox.seccomp", origin));
  ASSIGN_OR_RETURN(c.sandbox.seccompAllow,
                   yamlStringList(sc, "allow", "sandbox.seccomp", origin, {}, "a group name"));
  YAML::Node eg = section(sb, "egress");
  RETURN_IF_ERROR(yamlOnlyKeys(eg, {"allow"}, "sandbox.egress", origin));
  ASSIGN_OR_RETURN(c.sandbox.egressAllow,
                   yamlStringList(eg, "allow", "sandbox.egress", origin, {}, "a CIDR"));
  ASSIGN_OR_RETURN(c.sandbox.nameservers,
                   yamlStringList(sb, "nameservers", "sandbox", origin, {}, "an IP address"));
  ASSIGN_OR_RETURN(c.sandbox.userNamespaces,
                   yamlBool(sb, "userNamespaces", "sandbox", origin, c.sandbox.userNamespaces));
  ASSIGN_OR_RETURN(c.sandbox.diskQuotas,
                   yamlBool(sb, "diskQuotas", "sandbox", origin, c.sandbox.diskQuotas));
  ASSIGN_OR_RETURN(std::string storage, yamlString(sb, "defaultStorage", "sandbox", origin, ""));
  if (!storage.empty()) {
    auto bytes = parseBytes(storage);
    if (!bytes.isOk() || *bytes < (int64_t{16} << 20))
      return invalidArgument(origin + ": sandbox.defaultStorage: '" + storage +
                             "' (expected a size of at least 16Mi, like 1Gi)");
    c.sandbox.defaultStorageBytes = *bytes;
  }
  YAML::Node cap = section(root, "capacity");
  RETURN_IF_ERROR(yamlOnlyKeys(cap, {"cpu", "memory", "storage"}, "capacity", origin));
  if (cap.IsMap()) {
    ASSIGN_OR_RETURN(auto cpu, scalar(cap, "cpu", "capacity", origin));
    if (!cpu.empty()) {
      auto v = parseCpu(cpu);
      if (!v.isOk())
        return invalidArgument(yamlWhere(origin, cap["cpu"]) +
                               "capacity.cpu: " + v.status().message());
      c.capacity.cpu = *v;
    }
    for (auto [key, field] :
         {std::pair{"memory", &c.capacity.memory}, std::pair{"storage", &c.capacity.storage}}) {
      ASSIGN_OR_RETURN(auto text, scalar(cap, key, "capacity", origin));
      if (text.empty()) continue;
      auto v = parseBytes(text);
      if (!v.isOk())
        return invalidArgument(yamlWhere(origin, cap[key]) + "capacity." + key + ": " +
                               v.status().message());
      *field = *v;
    }
  }
  YAML::Node pr = section(root, "prices");
  RETURN_IF_ERROR(
      yamlOnlyKeys(pr, {"cpuSecond", "memGibSecond", "egressGib", "requests1k", "storageGibHour"},
                   "prices", origin));
  if (pr.IsMap()) {
    for (auto [key, field] : {std::pair{"cpuSecond", &c.prices.cpuSecond},
                              std::pair{"memGibSecond", &c.prices.memGibSecond},
                              std::pair{"egressGib", &c.prices.egressGib},
                              std::pair{"requests1k", &c.prices.requests1k},
                              std::pair{"storageGibHour", &c.prices.storageGibHour}}) {
      ASSIGN_OR_RETURN(auto text, scalar(pr, key, "prices", origin));
      if (text.empty()) continue;
      auto v = parseAmount(text);
      if (!v.isOk())
        return invalidArgument(yamlWhere(origin, pr[key]) + "prices." + key + ": " +
                               v.status().message());
      *field = *v;
    }
  }
  ASSIGN_OR_RETURN(c.backend, yamlString(root, "backend", "", origin, c.backend));
  ASSIGN_OR_RETURN(int64_t claimS,
                   yamlInt(root, "claimIntervalSeconds", "", origin, c.claimIntervalMs / 1000));
  ASSIGN_OR_RETURN(int64_t graceS,
                   yamlInt(root, "gracePeriodSeconds", "", origin, c.graceMs / 1000));
  ASSIGN_OR_RETURN(c.maxBundleBytes, yamlInt(root, "maxBundleBytes", "", origin, c.maxBundleBytes));
  if (claimS < 1) return invalidArgument(origin + ": claimIntervalSeconds: expected at least 1");
  if (graceS < 0) return invalidArgument(origin + ": gracePeriodSeconds: must not be negative");
  if (c.maxBundleBytes < 1024)
    return invalidArgument(origin + ": maxBundleBytes: expected at least 1024");
  c.claimIntervalMs = claimS * 1000;
  c.graceMs = graceS * 1000;
  if (root["bidding"].IsDefined()) {  // `bidding:` alone enables it with the defaults
    ASSIGN_OR_RETURN(c.bidding,
                     bidengine::parseBiddingConfig(
                         root["bidding"], origin,
                         std::filesystem::path(origin).parent_path().string(), c.prices));
  }
  if (c.capacity.cpu <= 0 || c.capacity.memory <= 0)
    return invalidArgument(origin + ": capacity: cpu and memory must be positive");
  return c;
}

Result<ProviderConfig> fromYaml(const YAML::Node& root, const std::string& origin) {
  try {
    return fromYamlUnchecked(root, origin);
  } catch (const YAML::Exception& e) {
    return invalidArgument(origin + ": " + e.what());
  }
}

}  // namespace

ProviderConfig devProviderConfig() {
  ProviderConfig c;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  c.capacity.cpu = std::max<long>(cpus, 1) * 1000;
  c.capacity.memory = pages > 0 && page > 0 ? int64_t{pages} * page / 4 * 3 : int64_t{2} << 30;
  c.attributes = {{"region", "local"}, {"tier", "dev"}};
  c.prices.cpuSecond = 1'000;       // 0.001 MER
  c.prices.memGibSecond = 500;      // 0.0005 MER
  c.prices.egressGib = 10'000;      // 0.01 MER
  c.prices.requests1k = 10'000;     // 0.01 MER
  c.prices.storageGibHour = 1'000;  // 0.001 MER per GiB-hour of disk in use
  c.claimIntervalMs = 5'000;
  c.graceMs = 30'000;
  c.bidding = bidengine::BiddingConfig{};
  c.bidding->pricing.rates = c.prices;
  return c;
}

Result<ProviderConfig> parseProviderConfig(const std::string& text, const std::string& origin) {
  ASSIGN_OR_RETURN(YAML::Node root, parseYaml(text, origin));
  return fromYaml(root, origin);
}

Result<ProviderConfig> loadProviderConfig(const std::string& path) {
  ASSIGN_OR_RETURN(YAML::Node root, loadYamlFile(path));
  return fromYaml(root, path);
}

}  // namespace mercato::provider
