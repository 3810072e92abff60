// P2pService: the node's p2p role. It owns the UDP transport, one Discovery engine per joined
// network (discovery/discovery.hpp), the identity record this node publishes, the records and
// summaries of the nodes it knows (the repository), and the persisted network list. It serves
// /p2p/v1 on the node's HTTP server (routes in service_routes.cpp; docs/p2p.md).
//
// What crosses the wire is in wire.hpp. The service adds:
//   - bootstrap: initialNodes given as "peerId@ip:port" seed every network's Discovery; plain
//     "ip:port" ones are pinged directly until a network knows somebody (the pinged node's
//     Discovery then probes back). A node discovered in one network is pinged in every other
//     joined network, so shared networks form without their own initial nodes.
//   - records: a node's identity record replaces an older one (higher seq); an older seq is
//     dropped and counted as "replayed".
//   - repository: each known node is asked for its summary (record + capabilities, prices,
//     running components) when discovered and every summaryPeriodMs.
//
// Threads: all state lives on the transport's I/O thread. Public methods post to it and wait
// (they must not be called from it); HTTP handlers post and answer asynchronously.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "p2p/transport.hpp"

namespace mercato::net {
class Router;
}

namespace mercato::p2p {

struct P2pConfig {
  TransportOptions transport;             // UDP listen address, packet size, rate limit
  std::vector<std::string> advertise;     // addresses in the identity record; default: listen
  std::vector<std::string> initialNodes;  // "ip:port" or "mpeer1...@ip:port"
  int64_t maxPingMs = 50;
  int64_t pingPeriodMs = 1000;
  int64_t pingTimeoutMs = 0;  // 0: pingPeriodMs / 2
  size_t minKnown = 10;
  int64_t summaryPeriodMs = 10'000;
  bool publicNetwork = true;             // join the public network on first start
  std::vector<std::string> networkKeys;  // private networks joined at start (and persisted)
  std::string dataDir;                   // state.json lives here
  std::string defaultName;               // the node's name until set-name; default hostname
  std::vector<std::string> roles;        // published in the identity record
  uint16_t httpPort = 0;                 // published in the identity record
  // Capabilities, prices and running components of this node (a JSON object), sent to peers
  // that ask. Called on the I/O thread at most once per second: must be quick.
  std::function<nlohmann::json()> localSummary;
  uint64_t rngSeed = 0;  // 0: random
};

class P2pService {
 public:
  // Binds the UDP socket and loads DATA_DIR state. Nothing is sent until start().
  static Result<std::unique_ptr<P2pService>> create(P2pConfig config,
                                                    const crypto::Identity& identity, Clock& clock,
                                                    MetricsRegistry* metrics);
  ~P2pService();

  // The HTTP port to publish (known only once the HTTP server is bound). REQUIRES: before
  // start().
  void setHttpPort(uint16_t port);
  // Joins the persisted and configured networks and starts discovery.
  Status start();
  void stop();

  // /p2p/v1 routes. Mutations need `Authorization: Bearer <adminToken>`.
  void registerRoutes(net::Router& router, const std::string& adminToken);

  std::string peerId() const;
  uint16_t udpPort() const;
  std::string endpoint() const;  // the bound UDP "ip:port"
  UdpTransport& transport();

  // Blocking views and operations (the same as the HTTP API; JSON shapes in docs/p2p.md).
  nlohmann::json identityJson();
  Result<nlohmann::json> setName(const std::string& name);
  nlohmann::json networksJson();
  // Creates a private network; the result carries its shareable "key".
  Result<nlohmann::json> createNetwork(const std::string& name);
  Result<nlohmann::json> joinNetwork(const std::string& keyText);
  Status leaveNetwork(const std::string& name);
  // Known peers, optionally of one network (by name); kNotFound for a network not joined.
  Result<nlohmann::json> peersJson(const std::optional<std::string>& network);
  Result<nlohmann::json> nodeJson(const std::string& peerId);
  nlohmann::json statsJson();

  struct Impl;

 private:
  explicit P2pService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mercato::p2p
