// The p2p role of mercatod: its config section and the glue that builds a P2pService for the
// node (roles, HTTP port, and this host's capabilities, prices and running components as the
// summary that peers fetch).
//
//   p2p:
//     enabled: false
//     listen: 0.0.0.0:7401        # UDP
//     advertise: []               # ip:port put in the identity record (default: listen)
//     initialNodes: []            # ip:port or mpeer1...@ip:port
//     maxPingMs: 50
//     pingPeriodMs: 1000
//     pingTimeoutMs: 0            # 0 = pingPeriodMs / 2
//     minKnown: 10                # below this many nodes in range the threshold widens
//     summaryPeriodMs: 10000
//     publicNetwork: true         # join the public network on first start
//     networks: []                # private network keys (mnet1...) to join
//     name: ""                    # default: the host name (mercato identity set-name changes it)
//     ratePerSec: 200             # per source address
//     burst: 400
//
// Thread-safety: value types; the summary function is called on the p2p I/O thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "ledger/types.hpp"
#include "p2p/service.hpp"

namespace CLI {
class App;
}
namespace mercato::runtime {
class Runtime;
}

namespace mercato::node {

struct P2pRoleConfig {
  bool enabled = false;
  std::string listen = "0.0.0.0:7401";
  std::vector<std::string> advertise;
  std::vector<std::string> initialNodes;
  int64_t maxPingMs = 50;
  int64_t pingPeriodMs = 1000;
  int64_t pingTimeoutMs = 0;
  int64_t minKnown = 10;
  int64_t summaryPeriodMs = 10'000;
  bool publicNetwork = true;
  std::vector<std::string> networks;
  std::string name;
  int64_t ratePerSec = 200;
  int64_t burst = 400;
};

// Reads the `p2p:` section (absent = defaults). Errors name origin:line and the field.
Status loadP2pRoleConfig(const YAML::Node& section, const std::string& origin, P2pRoleConfig& c);

// What the node knows about itself, for the summary its peers fetch.
struct LocalNodeInfo {
  std::string dataDir;                       // its filesystem is the disk figure
  runtime::Runtime* runtime = nullptr;       // running components, when the node runs workloads
  std::optional<ledger::Prices> prices;      // when the node is a provider
  std::optional<ledger::Capacity> capacity;  // what it sells, when the node is a provider
};

// {"capabilities": {"cpu": {"total","free"}, "memory": {"total","free"}, "disk": {"total",
// "free"}, "arch", "runtimes", "traits"}, "prices": {...}|null, "components": [...]}
std::function<nlohmann::json()> makeLocalSummary(LocalNodeInfo info);

// mercatod's p2p flags. Any of them enables the role; --dev enables it on loopback (a free
// UDP port, no initial nodes) unless the config file already did.
struct P2pFlags {
  bool enable = false;
  std::string listen;
  std::vector<std::string> initialNodes;
  int64_t maxPingMs = 0;
  int64_t pingPeriodMs = 0;
};
void addP2pFlags(CLI::App& app, P2pFlags& flags);
void applyP2pFlags(const P2pFlags& flags, bool dev, P2pRoleConfig& c);

// The node's P2pService (UDP bound, not started). `roles` go into its identity record.
Result<std::unique_ptr<p2p::P2pService>> createP2pRole(
    const P2pRoleConfig& c, const std::string& dataDir, std::vector<std::string> roles,
    LocalNodeInfo info, const crypto::Identity& identity, Clock& clock, MetricsRegistry* metrics);

}  // namespace mercato::node
