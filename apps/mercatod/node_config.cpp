#include "mercatod/node_config.hpp"

#include "common/config.hpp"

namespace mercato::node {

namespace {
Status onlyKeys(const YAML::Node& n, std::initializer_list<const char*> allowed,
                const std::string& path, const std::string& file) {
  if (!n.IsDefined() || n.IsNull()) return Status::ok();
  if (!n.IsMap())
    return invalidArgument(yamlWhere(file, n) + (path.empty() ? "top level" : path) +
                           ": expected a mapping");
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) {
      std::string all;
      for (const char* a : allowed) all += (all.empty() ? "" : ", ") + std::string(a);
      return invalidArgument(yamlWhere(file, it->first) + (path.empty() ? "" : path + ".") + key +
                             ": unknown setting (expected one of " + all + ")");
    }
  }
  return Status::ok();
}
}  // namespace

Result<NodeConfig> loadNodeConfig(const std::string& path, NodeConfig c) {
  ASSIGN_OR_RETURN(YAML::Node root, loadYamlFile(path));
  if (root.IsNull()) return c;
  RETURN_IF_ERROR(
      onlyKeys(root, {"listen", "dataDir", "dev", "roles", "ledger", "http", "runtime"}, "", path));
  ASSIGN_OR_RETURN(c.listen, yamlString(root, "listen", "", path, c.listen));
  ASSIGN_OR_RETURN(c.dataDir, yamlString(root, "dataDir", "", path, c.dataDir));
  ASSIGN_OR_RETURN(c.dev, yamlBool(root, "dev", "", path, c.dev));
  YAML::Node roles = root["roles"];
  RETURN_IF_ERROR(onlyKeys(roles, {"ledgerHost", "runtime"}, "roles", path));
  ASSIGN_OR_RETURN(c.ledgerHost, yamlBool(roles, "ledgerHost", "roles", path, c.ledgerHost));
  ASSIGN_OR_RETURN(c.runtime, yamlBool(roles, "runtime", "roles", path, c.runtime));
  YAML::Node rt = root["runtime"];
  RETURN_IF_ERROR(onlyKeys(
      rt, {"backend", "subnetPool", "sampleIntervalMs", "imageCacheBytes", "insecureRegistries"},
      "runtime", path));
  ASSIGN_OR_RETURN(c.runtimeBackend, yamlString(rt, "backend", "runtime", path, c.runtimeBackend));
  ASSIGN_OR_RETURN(c.subnetPool, yamlString(rt, "subnetPool", "runtime", path, c.subnetPool));
  ASSIGN_OR_RETURN(c.sampleIntervalMs,
                   yamlInt(rt, "sampleIntervalMs", "runtime", path, c.sampleIntervalMs));
  ASSIGN_OR_RETURN(c.imageCacheBytes,
                   yamlInt(rt, "imageCacheBytes", "runtime", path, c.imageCacheBytes));
  if (rt.IsMap() && rt["insecureRegistries"]) {
    const YAML::Node list = rt["insecureRegistries"];
    if (!list.IsSequence())
      return invalidArgument(yamlWhere(path, list) +
                             "runtime.insecureRegistries: expected a list of host[:port]");
    c.insecureRegistries.clear();
    for (const auto& item : list) c.insecureRegistries.push_back(item.as<std::string>());
  }
  if (c.sampleIntervalMs < 100)
    return invalidArgument(path + ": runtime.sampleIntervalMs: expected at least 100");
  YAML::Node ledger = root["ledger"];
  RETURN_IF_ERROR(onlyKeys(ledger, {"chainId", "closeGraceMs", "syncFull"}, "ledger", path));
  ASSIGN_OR_RETURN(c.chainId, yamlString(ledger, "chainId", "ledger", path, c.chainId));
  ASSIGN_OR_RETURN(c.closeGraceMs, yamlInt(ledger, "closeGraceMs", "ledger", path, c.closeGraceMs));
  ASSIGN_OR_RETURN(c.syncFull, yamlBool(ledger, "syncFull", "ledger", path, c.syncFull));
  YAML::Node http = root["http"];
  RETURN_IF_ERROR(onlyKeys(
      http, {"threads", "maxBodyBytes", "readTimeoutMs", "idleTimeoutMs", "tls"}, "http", path));
  ASSIGN_OR_RETURN(int64_t threads, yamlInt(http, "threads", "http", path, c.threads));
  if (threads < 1 || threads > 64)
    return invalidArgument(path + ": http.threads: expected 1 to 64, got " +
                           std::to_string(threads));
  c.threads = static_cast<int>(threads);
  ASSIGN_OR_RETURN(c.maxBodyBytes, yamlInt(http, "maxBodyBytes", "http", path, c.maxBodyBytes));
  ASSIGN_OR_RETURN(c.readTimeoutMs, yamlInt(http, "readTimeoutMs", "http", path, c.readTimeoutMs));
  ASSIGN_OR_RETURN(c.idleTimeoutMs, yamlInt(http, "idleTimeoutMs", "http", path, c.idleTimeoutMs));
  ASSIGN_OR_RETURN(c.tls, yamlBool(http, "tls", "http", path, c.tls));
  if (c.closeGraceMs < 0) return invalidArgument(path + ": ledger.closeGraceMs: must be >= 0");
  return c;
}

}  // namespace mercato::node
