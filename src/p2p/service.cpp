#include "p2p/service.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <filesystem>

#include "p2p/service_impl.hpp"

namespace mercato::p2p {

namespace fs = std::filesystem;

namespace {
// The summary JSON must leave room in one datagram for the record and the framing.
constexpr size_t kMaxSummaryBytes = 5000;
constexpr size_t kMaxRecords = 4096;

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "node";
  return buf;
}
}  // namespace

// ---- NetworkChannel: Discovery's view of the transport, per network ----

void NetworkChannel::sendPing(const NodeAddr& to, uint64_t nonce) {
  Message m;
  m.type = MsgType::kPing;
  m.nonce = nonce;
  impl_.send(net_, to.endpoint, std::move(m));
}

void NetworkChannel::sendPong(const NodeAddr& to, uint64_t nonce,
                              const std::vector<NodeAddr>& known) {
  Message m;
  m.type = MsgType::kPong;
  m.nonce = nonce;
  for (const auto& n : known) {
    if (m.known.size() >= kMaxGossipEntries) break;
    auto key = keyFromPeerId(n.id);
    if (!key.isOk() || n.endpoint.size() > kMaxEndpointBytes) continue;
    m.known.push_back({*key, n.endpoint});
  }
  impl_.send(net_, to.endpoint, std::move(m));
}

void NetworkChannel::onDiscovered(const NodeAddr& node, int64_t) {
  impl_.onDiscovered(*this, node);
}

void NetworkChannel::onLost(const PeerId& id) { impl_.onLost(id); }

// ---- Impl ----

NetworkChannel* P2pService::Impl::channel(const NetworkId& id) {
  for (auto& c : channels)
    if (c->network().id() == id) return c.get();
  return nullptr;
}

NetworkChannel* P2pService::Impl::channelByName(const std::string& name) {
  for (auto& c : channels)
    if (c->network().name() == name) return c.get();
  return nullptr;
}

bool P2pService::Impl::knownAnywhere(const PeerId& id) const {
  for (const auto& c : channels)
    if (c->discovery->isKnown(id)) return true;
  return false;
}

void P2pService::Impl::send(const Network& net, const std::string& endpoint, Message m) {
  if (Status s = transport->send(net, endpoint, std::move(m)); !s.isOk())
    spdlog::debug("p2p: not sent to {}: {}", endpoint, s.message());
}

void P2pService::Impl::ping(const Network& net, const std::string& endpoint) {
  Message m;
  m.type = MsgType::kPing;
  m.nonce = rng();
  bootstrapNonces[m.nonce] = clock.nowMillis();
  send(net, endpoint, std::move(m));
}

void P2pService::Impl::requestSummary(const Network& net, const NodeAddr& to) {
  PeerData& pd = peers[to.id];
  Message m;
  m.type = MsgType::kSummaryRequest;
  m.nonce = rng() | 1;
  pd.pendingNonce = m.nonce;
  send(net, to.endpoint, std::move(m));
}

Status P2pService::Impl::signSelf() {
  IdentityRecord r;
  r.seq = ++state.recordSeq;
  r.name = state.name.empty() ? (config.defaultName.empty() ? hostName() : config.defaultName)
                              : state.name;
  r.addresses = config.advertise;
  const std::string bound = transport->localEndpoint();
  const bool wildcard = bound.rfind("0.0.0.0:", 0) == 0 || bound.rfind("[::]:", 0) == 0;
  if (r.addresses.empty() && !wildcard) r.addresses.push_back(bound);
  r.udpPort = transport->port();
  r.httpPort = config.httpPort;
  r.roles = config.roles;
  RETURN_IF_ERROR(r.sign(identity));
  self = std::move(r);
  return Status::ok();
}

Status P2pService::Impl::persist() {
  state.publicJoined = channel(Network::publicNetwork().id()) != nullptr;
  state.networkKeys.clear();
  for (const auto& c : channels)
    if (c->network().isPrivate()) state.networkKeys.push_back(c->network().keyText());
  return saveP2pState(statePath, state);
}

Status P2pService::Impl::join(const Network& net, bool persistNow) {
  if (channel(net.id())) return alreadyExists("already in network '" + net.name() + "'");
  if (channelByName(net.name()))
    return alreadyExists("another network is already named '" + net.name() + "' (leave it first)");
  auto ch = std::make_unique<NetworkChannel>(*this, net);
  DiscoveryConfig dc;
  dc.maxPingMs = config.maxPingMs;
  dc.pingPeriodMs = config.pingPeriodMs;
  dc.pingTimeoutMs = config.pingTimeoutMs > 0 ? config.pingTimeoutMs : config.pingPeriodMs / 2;
  dc.minKnown = config.minKnown;
  dc.initialNodes = seeds;
  RETURN_IF_ERROR(dc.validate());
  ch->discovery = std::make_unique<Discovery>(
      dc, clock, *ch, NodeAddr{selfId, transport->localEndpoint()}, rng(),
      [t = transport.get()](std::function<void()> fn) { t->post(std::move(fn)); });
  ch->discovery->addListener(ch.get());
  transport->addNetwork(net);
  NetworkChannel& added = *ch;
  channels.push_back(std::move(ch));
  if (persistNow) RETURN_IF_ERROR(persist());
  added.discovery->start();
  // Ask everybody we already know whether they are in this network too.
  for (const auto& e : bootstrapEndpoints)
    if (e != transport->localEndpoint()) ping(net, e);
  for (const auto& c : channels)
    for (const auto& k : c->discovery->known()) ping(net, k.addr.endpoint);
  spdlog::info("p2p: joined network '{}' ({}, id {})", net.name(),
               net.isPrivate() ? "private" : "public", net.id().hex());
  return Status::ok();
}

Status P2pService::Impl::leave(const std::string& name) {
  auto it = std::find_if(channels.begin(), channels.end(),
                         [&](const auto& c) { return c->network().name() == name; });
  if (it == channels.end()) return notFound("not in a network named '" + name + "'");
  std::unique_ptr<NetworkChannel> ch = std::move(*it);
  channels.erase(it);
  ch->discovery->stop();
  ch->discovery->removeListener(ch.get());
  transport->removeNetwork(ch->network().id());
  for (const auto& k : ch->discovery->known()) onLost(k.addr.id);
  spdlog::info("p2p: left network '{}'", name);
  return persist();
}

void P2pService::Impl::acceptRecord(const crypto::PublicKey& sender, std::string_view bytes) {
  auto rec = IdentityRecord::decode(bytes);
  if (!rec.isOk() || rec->key != sender) {
    transport->countDrop(DropReason::kMalformed);
    return;
  }
  if (!rec->verify()) {
    transport->countDrop(DropReason::kBadSignature);
    return;
  }
  const PeerId id = peerIdFromKey(sender);
  auto it = records.find(id);
  if (it != records.end()) {
    if (rec->seq < it->second.seq) {
      transport->countDrop(DropReason::kReplayed);
      spdlog::debug("p2p: dropped identity record seq {} of {} (have {})", rec->seq, id,
                    it->second.seq);
      return;
    }
    if (rec->seq == it->second.seq) return;
  } else if (records.size() >= kMaxRecords) {
    // Forget a record of a node that is no longer known anywhere.
    for (auto r = records.begin(); r != records.end(); ++r) {
      if (!knownAnywhere(r->first)) {
        records.erase(r);
        break;
      }
    }
    if (records.size() >= kMaxRecords) return;
  }
  records[id] = std::move(*rec);
  recordsAccepted->inc();
}

void P2pService::Impl::handle(const Network& net, Message&& m, const std::string& from) {
  NetworkChannel* ch = channel(net.id());
  if (!ch) return;
  const PeerId pid = peerIdFromKey(m.sender);
  if (pid == selfId) return;
  const NodeAddr addr{pid, from};
  switch (m.type) {
    case MsgType::kPing:
      ch->discovery->onPing(addr, m.nonce);
      break;
    case MsgType::kPong: {
      if (bootstrapNonces.erase(m.nonce)) break;  // our own bootstrap ping; it will probe back
      std::vector<NodeAddr> known;
      known.reserve(m.known.size());
      for (const auto& e : m.known) known.push_back({peerIdFromKey(e.key), e.endpoint});
      ch->discovery->onPong(addr, m.nonce, std::move(known));
      break;
    }
    case MsgType::kRecord:
      acceptRecord(m.sender, m.record);
      break;
    case MsgType::kSummaryRequest: {
      // Only to nodes whose address a ping round trip has verified: a summary is much larger
      // than the request, and must not be reflected at a forged source address.
      if (!ch->discovery->isKnown(pid)) break;
      Message r;
      r.type = MsgType::kSummaryResponse;
      r.nonce = m.nonce;
      r.record = self.encode();
      r.summary = localSummary().dump();
      send(net, from, std::move(r));
      break;
    }
    case MsgType::kSummaryResponse: {
      auto it = peers.find(pid);
      if (it == peers.end() || it->second.pendingNonce == 0 || it->second.pendingNonce != m.nonce)
        break;
      it->second.pendingNonce = 0;
      acceptRecord(m.sender, m.record);
      try {
        auto j = nlohmann::json::parse(m.summary);
        if (!j.is_object()) throw std::runtime_error("not an object");
        it->second.summary = std::move(j);
        it->second.summaryAtMs = clock.nowMillis();
        summariesReceived->inc();
      } catch (const std::exception&) {
        transport->countDrop(DropReason::kMalformed);
      }
      break;
    }
  }
}

void P2pService::Impl::onDiscovered(NetworkChannel& ch, const NodeAddr& node) {
  PeerData& pd = peers[node.id];
  if (pd.summary.is_null()) requestSummary(ch.network(), node);
  // Is it in our other networks too? Ping it there; if it is, its Discovery probes back.
  const int64_t now = clock.nowMillis();
  for (const auto& c : channels) {
    if (c.get() == &ch || c->discovery->isKnown(node.id)) continue;
    auto& last = crossPings[{node.id, c->network().id()}];
    if (last != 0 && now - last < 10 * config.pingPeriodMs) continue;
    last = now;
    ping(c->network(), node.endpoint);
  }
}

void P2pService::Impl::onLost(const PeerId& id) {
  if (knownAnywhere(id)) return;
  peers.erase(id);
}

nlohmann::json P2pService::Impl::localSummary() {
  const int64_t now = clock.nowMillis();
  if (cachedSummaryAtMs >= 0 && now - cachedSummaryAtMs < 1000) return cachedSummary;
  nlohmann::json j = nlohmann::json::object();
  if (config.localSummary) {
    try {
      j = config.localSummary();
      if (!j.is_object()) j = nlohmann::json::object();
    } catch (const std::exception& e) {
      spdlog::warn("p2p: local summary failed: {}", e.what());
    }
  }
  if (j.dump().size() > kMaxSummaryBytes && j.contains("components")) {
    j["componentsTruncated"] = j["components"].size();
    j["components"] = nlohmann::json::array();
  }
  if (j.dump().size() > kMaxSummaryBytes) j = {{"truncated", true}};
  cachedSummary = j;
  cachedSummaryAtMs = now;
  return j;
}

void P2pService::Impl::armTick() {
  std::weak_ptr<bool> weak = alive;
  tickTimer = clock.callAfter(Millis(config.pingPeriodMs), [this, weak] {
    if (weak.expired()) return;
    transport->post([this, weak] {
      if (!weak.expired()) tick();
    });
  });
}

void P2pService::Impl::tick() {
  const int64_t now = clock.nowMillis();
  std::erase_if(bootstrapNonces, [&](const auto& kv) { return now - kv.second > 10'000; });
  std::erase_if(crossPings,
                [&](const auto& kv) { return now - kv.second > 20 * config.pingPeriodMs; });
  for (const auto& c : channels) {
    if (c->discovery->knownCount() == 0)
      for (const auto& e : bootstrapEndpoints)
        if (e != transport->localEndpoint()) ping(c->network(), e);
    metrics
        ->gauge("mercato_p2p_known_nodes{network=\"" + c->network().name() + "\"}",
                "Nodes kept by discovery, per joined network")
        ->set(static_cast<int64_t>(c->discovery->knownCount()));
  }
  // Repository refresh: a node without a summary is asked every tick until it answers (it may
  // not have verified us yet); the others every summaryPeriodMs.
  for (const auto& c : channels) {
    for (const auto& k : c->discovery->known()) {
      PeerData& pd = peers[k.addr.id];
      const bool due = pd.summary.is_null() || now - pd.summaryAtMs >= config.summaryPeriodMs;
      if (due) requestSummary(c->network(), k.addr);
    }
  }
  armTick();
}

// ---- P2pService ----

P2pService::P2pService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

P2pService::~P2pService() { stop(); }

Result<std::unique_ptr<P2pService>> P2pService::create(P2pConfig config,
                                                       const crypto::Identity& identity,
                                                       Clock& clock, MetricsRegistry* metrics) {
  if (config.pingPeriodMs < 10) return invalidArgument("p2p: pingPeriodMs: expected >= 10");
  if (config.maxPingMs < 1) return invalidArgument("p2p: maxPingMs: expected >= 1");
  if (config.summaryPeriodMs < config.pingPeriodMs)
    return invalidArgument("p2p: summaryPeriodMs: expected >= pingPeriodMs");
  auto impl = std::make_unique<Impl>(std::move(config), identity, clock, metrics);
  Impl& s = *impl;
  for (const auto& a : s.config.advertise)
    if (Status st = validateEndpoint(a); !st.isOk()) return st.withContext("p2p.advertise");
  for (const auto& n : s.config.initialNodes) {
    const auto at = n.find('@');
    if (at == std::string::npos) {
      RETURN_IF_ERROR(validateEndpoint(n).withContext("p2p.initialNodes"));
      s.bootstrapEndpoints.push_back(n);
      continue;
    }
    auto key = keyFromPeerId(n.substr(0, at));
    if (!key.isOk()) return key.status().withContext("p2p.initialNodes: " + n);
    const std::string ep = n.substr(at + 1);
    if (Status st = validateEndpoint(ep); !st.isOk()) return st.withContext("p2p.initialNodes");
    s.seeds.push_back({n.substr(0, at), ep});
  }
  std::vector<Network> configured;
  for (const auto& k : s.config.networkKeys) {
    auto net = Network::fromKeyText(k);
    if (!net.isOk()) return net.status().withContext("p2p.networks");
    configured.push_back(*net);
  }
  s.statePath = (fs::path(s.config.dataDir) / "state.json").string();
  ASSIGN_OR_RETURN(s.state, loadP2pState(s.statePath));
  if (!fs::exists(s.statePath)) s.state.publicJoined = s.config.publicNetwork;
  for (const auto& n : configured) {
    const std::string text = n.keyText();
    if (std::find(s.state.networkKeys.begin(), s.state.networkKeys.end(), text) ==
        s.state.networkKeys.end())
      s.state.networkKeys.push_back(text);
  }
  s.rng.seed(s.config.rngSeed ? s.config.rngSeed : std::random_device{}());
  s.selfId = peerIdFromKey(identity.publicKey());
  s.recordsAccepted =
      s.metrics->counter("mercato_p2p_records_accepted_total", "Identity records accepted");
  s.summariesReceived =
      s.metrics->counter("mercato_p2p_summaries_received_total", "Node summaries received");
  ASSIGN_OR_RETURN(s.transport,
                   UdpTransport::create(s.config.transport, identity, clock, s.metrics));
  s.transport->setHandler([&s](const Network& net, Message&& m, const std::string& from) {
    s.handle(net, std::move(m), from);
  });
  return std::unique_ptr<P2pService>(new P2pService(std::move(impl)));
}

void P2pService::setHttpPort(uint16_t port) { impl_->config.httpPort = port; }

Status P2pService::start() {
  Impl& s = *impl_;
  if (s.started) return Status::ok();
  s.transport->start();
  s.started = true;
  Status st = s.call([&s]() -> Status {
    if (s.state.publicJoined) RETURN_IF_ERROR(s.join(Network::publicNetwork(), false));
    for (const auto& k : std::vector<std::string>(s.state.networkKeys)) {
      auto net = Network::fromKeyText(k);
      if (!net.isOk()) return net.status().withContext(s.statePath);
      RETURN_IF_ERROR(s.join(*net, false));
    }
    RETURN_IF_ERROR(s.signSelf());  // a new seq on every start: addresses may have changed
    RETURN_IF_ERROR(s.persist());
    s.armTick();
    return Status::ok();
  });
  if (!st.isOk()) return st;
  spdlog::info("p2p: peer {} on udp {} ({} network(s))", s.selfId, s.transport->localEndpoint(),
               s.channels.size());
  return Status::ok();
}

void P2pService::stop() {
  Impl& s = *impl_;
  if (!s.started.exchange(false)) return;
  s.call([&s] {
    *s.alive = false;
    s.alive = std::make_shared<bool>(false);
    s.clock.cancel(s.tickTimer);
    for (auto& c : s.channels) {
      c->discovery->stop();
      c->discovery->removeListener(c.get());
    }
    return 0;
  });
  s.transport->stop();
  s.channels.clear();
}

std::string P2pService::peerId() const { return impl_->selfId; }
uint16_t P2pService::udpPort() const { return impl_->transport->port(); }
std::string P2pService::endpoint() const { return impl_->transport->localEndpoint(); }
UdpTransport& P2pService::transport() { return *impl_->transport; }

}  // namespace mercato::p2p
