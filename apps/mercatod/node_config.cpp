#include "mercatod/node_config.hpp"

#include "common/config.hpp"

namespace mercato::node {

Result<NodeConfig> loadNodeConfig(const std::string& path, NodeConfig c) {
  ASSIGN_OR_RETURN(YAML::Node root, loadYamlFile(path));
  if (root.IsNull()) return c;
  RETURN_IF_ERROR(yamlOnlyKeys(
      root,
      {"listen", "dataDir", "dev", "roles", "ledger", "http", "runtime", "providerConfig", "p2p"},
      "", path));
  ASSIGN_OR_RETURN(c.listen, yamlString(root, "listen", "", path, c.listen));
  ASSIGN_OR_RETURN(c.dataDir, yamlString(root, "dataDir", "", path, c.dataDir));
  ASSIGN_OR_RETURN(c.dev, yamlBool(root, "dev", "", path, c.dev));
  YAML::Node roles = root["roles"];
  RETURN_IF_ERROR(yamlOnlyKeys(roles, {"ledgerHost", "runtime", "provider"}, "roles", path));
  ASSIGN_OR_RETURN(c.ledgerHost, yamlBool(roles, "ledgerHost", "roles", path, c.ledgerHost));
  ASSIGN_OR_RETURN(c.runtime, yamlBool(roles, "runtime", "roles", path, c.runtime));
  ASSIGN_OR_RETURN(c.provider, yamlBool(roles, "provider", "roles", path, c.provider));
  ASSIGN_OR_RETURN(c.providerConfigPath,
                   yamlString(root, "providerConfig", "", path, c.providerConfigPath));
  YAML::Node rt = root["runtime"];
  RETURN_IF_ERROR(yamlOnlyKeys(
      rt, {"backend", "subnetPool", "sampleIntervalMs", "imageCacheBytes", "insecureRegistries"},
      "runtime", path));
  ASSIGN_OR_RETURN(c.runtimeBackend, yamlString(rt, "backend", "runtime", path, c.runtimeBackend));
  ASSIGN_OR_RETURN(c.subnetPool, yamlString(rt, "subnetPool", "runtime", path, c.subnetPool));
  ASSIGN_OR_RETURN(c.sampleIntervalMs,
                   yamlInt(rt, "sampleIntervalMs", "runtime", path, c.sampleIntervalMs));
  ASSIGN_OR_RETURN(c.imageCacheBytes,
                   yamlInt(rt, "imageCacheBytes", "runtime", path, c.imageCacheBytes));
  ASSIGN_OR_RETURN(c.insecureRegistries, yamlStringList(rt, "insecureRegistries", "runtime", path,
                                                        c.insecureRegistries, "host[:port]"));
  if (c.sampleIntervalMs < 100)
    return invalidArgument(path + ": runtime.sampleIntervalMs: expected at least 100");
  YAML::Node ledger = root["ledger"];
  RETURN_IF_ERROR(
      yamlOnlyKeys(ledger, {"url", "chainId", "closeGraceMs", "syncFull"}, "ledger", path));
  ASSIGN_OR_RETURN(c.ledgerUrl, yamlString(ledger, "url", "ledger", path, c.ledgerUrl));
  ASSIGN_OR_RETURN(c.chainId, yamlString(ledger, "chainId", "ledger", path, c.chainId));
  ASSIGN_OR_RETURN(c.closeGraceMs, yamlInt(ledger, "closeGraceMs", "ledger", path, c.closeGraceMs));
  ASSIGN_OR_RETURN(c.syncFull, yamlBool(ledger, "syncFull", "ledger", path, c.syncFull));
  YAML::Node http = root["http"];
  RETURN_IF_ERROR(yamlOnlyKeys(
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
  RETURN_IF_ERROR(loadP2pRoleConfig(root["p2p"], path, c.p2p));
  return c;
}

}  // namespace mercato::node
