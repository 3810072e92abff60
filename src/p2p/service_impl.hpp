// Internal to the p2p service (service.cpp, service_routes.cpp): the state owned by the
// transport's I/O thread. Not part of the module's interface.
#pragma once

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <unordered_map>

#include "p2p/discovery/discovery.hpp"
#include "p2p/identity_record.hpp"
#include "p2p/service.hpp"
#include "p2p/state_store.hpp"

namespace mercato::p2p {

// One joined network: its Discovery engine and the adapter that carries the engine's pings and
// pongs over the shared transport.
class NetworkChannel final : public DiscoveryTransport, public DiscoveryListener {
 public:
  NetworkChannel(P2pService::Impl& impl, Network net) : impl_(impl), net_(std::move(net)) {}
  void sendPing(const NodeAddr& to, uint64_t nonce) override;
  void sendPong(const NodeAddr& to, uint64_t nonce, const std::vector<NodeAddr>& known) override;
  void onDiscovered(const NodeAddr& node, int64_t rttMicros) override;
  void onLost(const PeerId& id) override;
  const Network& network() const { return net_; }

  std::unique_ptr<Discovery> discovery;

 private:
  P2pService::Impl& impl_;
  Network net_;
};

struct P2pService::Impl {
  struct PeerData {
    nlohmann::json summary;  // null until the first summary response
    int64_t summaryAtMs = 0;
    uint64_t pendingNonce = 0;
  };

  P2pConfig config;
  const crypto::Identity& identity;
  Clock& clock;
  MetricsRegistry ownMetrics;
  MetricsRegistry* metrics;
  std::unique_ptr<UdpTransport> transport;
  PeerId selfId;
  std::string statePath;
  P2pState state;
  IdentityRecord self;
  std::vector<std::unique_ptr<NetworkChannel>> channels;       // joined networks, in join order
  std::map<PeerId, IdentityRecord> records;                    // newest verified record per node
  std::map<PeerId, PeerData> peers;                            // summaries of known nodes
  std::vector<NodeAddr> seeds;                                 // initial nodes with a peer id
  std::vector<std::string> bootstrapEndpoints;                 // initial nodes without one
  std::map<std::pair<PeerId, NetworkId>, int64_t> crossPings;  // last cross-network ping, ms
  std::unordered_map<uint64_t, int64_t> bootstrapNonces;       // nonce -> sent at, ms
  std::mt19937_64 rng;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  TimerId tickTimer = 0;
  std::atomic<bool> started{false};
  nlohmann::json cachedSummary;
  int64_t cachedSummaryAtMs = -1;
  Counter* recordsAccepted = nullptr;
  Counter* summariesReceived = nullptr;

  Impl(P2pConfig c, const crypto::Identity& id, Clock& clk, MetricsRegistry* m)
      : config(std::move(c)), identity(id), clock(clk), metrics(m ? m : &ownMetrics) {}

  // Runs `fn` on the I/O thread and waits for its result.
  template <typename F>
  auto call(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    std::promise<R> p;
    auto fut = p.get_future();
    transport->post([&] { p.set_value(fn()); });
    return fut.get();
  }

  // I/O thread only, from here on.
  void handle(const Network& net, Message&& m, const std::string& from);
  NetworkChannel* channel(const NetworkId& id);
  NetworkChannel* channelByName(const std::string& name);
  Status join(const Network& net, bool persist);
  Status leave(const std::string& name);
  Status persist();
  Status signSelf();
  void send(const Network& net, const std::string& endpoint, Message m);
  void ping(const Network& net, const std::string& endpoint);
  void requestSummary(const Network& net, const NodeAddr& to);
  void acceptRecord(const crypto::PublicKey& sender, std::string_view bytes);
  void onDiscovered(NetworkChannel& ch, const NodeAddr& node);
  void onLost(const PeerId& id);
  bool knownAnywhere(const PeerId& id) const;
  void tick();
  void armTick();
  nlohmann::json localSummary();

  nlohmann::json identityJsonLocked() const;
  nlohmann::json networksJsonLocked() const;
  Result<nlohmann::json> peersJsonLocked(const std::optional<std::string>& network) const;
  Result<nlohmann::json> nodeJsonLocked(const std::string& peerId);
  nlohmann::json statsJsonLocked() const;
  Result<nlohmann::json> setNameLocked(const std::string& name);
  Result<nlohmann::json> joinLocked(const Network& net);
};

}  // namespace mercato::p2p
