// NodeConfig: what one mercatod process runs, read from YAML (--config) and overridden by flags.
//
//   listen: 127.0.0.1:7400
//   dataDir: ./.mercato
//   dev: false                 # dev mode: ledger host with mint (faucet) enabled
//   roles:
//     ledgerHost: true         # host the embedded ledger and serve /ledger/v1
//     runtime: false           # run workloads (cluster backend) and serve /runtime/v1
//     provider: false          # sell capacity: gateway, facade, settlement (implies runtime)
//   providerConfig: ./provider.yaml
//   runtime:
//     backend: runc
//     subnetPool: 10.89.0.0/16
//     sampleIntervalMs: 10000
//     imageCacheBytes: 21474836480
//     insecureRegistries: []   # plain-http registries besides loopback
//   ledger:
//     url: http://ledger-host:7400   # when this node doesn't host the ledger
//     chainId: mercato-dev
//     closeGraceMs: 60000
//     syncFull: true           # fsync every group commit
//   http:
//     threads: 2
//     maxBodyBytes: 4194304
//     readTimeoutMs: 10000
//     idleTimeoutMs: 60000
//     tls: false               # serve HTTPS with a certificate bound to the node key
//   p2p: {enabled: false, ...} # identity, networks, discovery (mercatod/p2p_role.hpp)
//
// docs/operations.md is the reference. Unknown keys are errors (typos must not pass silently).
// Thread-safety: value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "mercatod/p2p_role.hpp"

namespace mercato::node {

struct NodeConfig {
  std::string listen = "127.0.0.1:7400";
  std::string dataDir = "./.mercato";
  bool dev = false;
  bool ledgerHost = true;
  bool runtime = false;
  bool provider = false;           // implies runtime
  std::string providerConfigPath;  // provider.yaml; "" = dev defaults (with --dev)
  std::string ledgerUrl;           // remote ledger host, when ledgerHost is false
  std::string runtimeBackend = "runc";
  std::string subnetPool = "10.89.0.0/16";
  int64_t sampleIntervalMs = 10'000;
  int64_t imageCacheBytes = int64_t{20} << 30;
  std::vector<std::string> insecureRegistries;
  std::string chainId = "mercato-dev";
  int64_t closeGraceMs = 60'000;
  bool syncFull = true;
  int threads = 2;
  int64_t maxBodyBytes = 4 << 20;
  int64_t readTimeoutMs = 10'000;
  int64_t idleTimeoutMs = 60'000;
  bool tls = false;
  P2pRoleConfig p2p;
};

// Reads a YAML config file over the defaults in `base`. Errors name file:line and the field.
Result<NodeConfig> loadNodeConfig(const std::string& path, NodeConfig base = {});

}  // namespace mercato::node
