#include "sim.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>

#include <time.h>

namespace mercato::p2p::sim {

namespace {

constexpr uint8_t kPing = 0;
constexpr uint8_t kPong = 1;

// CPU time of this thread: unlike wall time, not inflated by other load on the machine.
double threadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

}  // namespace

size_t WireSizeModel::ping() const { return 22 + (privateNetwork ? 40 : 0) + 115 + 8; }

size_t WireSizeModel::pong(const std::vector<NodeAddr>& known) const {
  size_t n = 22 + (privateNetwork ? 40 : 0) + 115 + 9;
  for (const NodeAddr& a : known) n += 33 + a.endpoint.size();
  return n;
}

struct Simulation::Event {
  uint32_t from;
  uint32_t to;
  uint8_t type;
  uint64_t nonce;
  std::vector<NodeAddr> known;  // pong
};

class Simulation::Transport final : public DiscoveryTransport {
 public:
  Transport(Simulation& sim, size_t self) : sim_(sim), self_(self) {}
  void sendPing(const NodeAddr& to, uint64_t nonce) override {
    sim_.send(self_, to, kPing, nonce, nullptr);
  }
  void sendPong(const NodeAddr& to, uint64_t nonce, const std::vector<NodeAddr>& known) override {
    sim_.send(self_, to, kPong, nonce, &known);
  }

 private:
  Simulation& sim_;
  size_t self_;
};

struct Simulation::Node {
  double x = 0, y = 0;
  NodeAddr addr;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Discovery> discovery;
  bool alive = true;
  size_t viable = 0;  // live nodes truly within maxPing
  uint64_t msgs = 0, bytes = 0;
  uint64_t baseMsgs = 0, baseBytes = 0;  // at the last round boundary
};

struct Simulation::Accum {
  size_t nodes = 0, complete = 0;
  double found = 0, viable = 0, worst = 1, known = 0, beyond = 0;
  uint64_t msgs = 0, maxMsgs = 0, bytes = 0;
};

Simulation::Simulation(SimConfig config) : config_(std::move(config)), rng_(config_.seed) {
  const double maxPing = static_cast<double>(config_.discovery.maxPingMs);
  const size_t n = config_.nodes;
  // n * pi * maxPing^2 / side^2 = neighbours
  side_ = maxPing * std::sqrt(static_cast<double>(n) * std::numbers::pi / config_.neighbours);
  std::uniform_real_distribution<double> pos(0, side_);
  nodes_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto node = std::make_unique<Node>();
    node->x = pos(rng_);
    node->y = pos(rng_);
    node->addr.id = "n" + std::to_string(i);
    node->addr.endpoint = "10." + std::to_string((i >> 16) & 255) + "." +
                          std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + ":7946";
    nodes_.push_back(std::move(node));
  }

  // A grid of maxPing-sized cells finds the nodes within a radius without an N^2 scan.
  const size_t cells = std::max<size_t>(1, static_cast<size_t>(side_ / maxPing));
  const double cellSize = side_ / static_cast<double>(cells);
  std::vector<std::vector<uint32_t>> grid(cells * cells);
  auto cellOf = [&](double v) { return std::min(cells - 1, static_cast<size_t>(v / cellSize)); };
  for (size_t i = 0; i < n; ++i) {
    grid[cellOf(nodes_[i]->y) * cells + cellOf(nodes_[i]->x)].push_back(static_cast<uint32_t>(i));
  }
  auto within = [&](size_t i, double radius) {
    std::vector<uint32_t> out;
    const long reach = static_cast<long>(std::ceil(radius / cellSize));
    if (2 * reach + 1 >= static_cast<long>(cells)) {
      for (size_t j = 0; j < n; ++j) {
        if (j != i && trueRttMs(i, j) <= radius) out.push_back(static_cast<uint32_t>(j));
      }
      return out;
    }
    const long cx = static_cast<long>(cellOf(nodes_[i]->x));
    const long cy = static_cast<long>(cellOf(nodes_[i]->y));
    const long c = static_cast<long>(cells);
    for (long dy = -reach; dy <= reach; ++dy) {
      for (long dx = -reach; dx <= reach; ++dx) {
        for (uint32_t j : grid[((cy + dy + c) % c) * cells + (cx + dx + c) % c]) {
          if (j != i && trueRttMs(i, j) <= radius) out.push_back(j);
        }
      }
    }
    return out;
  };

  std::uniform_int_distribution<size_t> anyNode(0, n - 1);
  for (size_t i = 0; i < n; ++i) {
    nodes_[i]->viable = within(i, maxPing).size();
    DiscoveryConfig dc = config_.discovery;
    dc.initialNodes.clear();
    std::vector<uint32_t> near = within(i, config_.nearbyRadius * maxPing);
    std::shuffle(near.begin(), near.end(), rng_);
    for (size_t k = 0; k < std::min(config_.nearbySeeds, near.size()); ++k) {
      dc.initialNodes.push_back(nodes_[near[k]]->addr);
    }
    for (size_t k = 0; k < config_.randomSeeds && n > 1; ++k) {
      size_t j;
      do {
        j = anyNode(rng_);
      } while (j == i);
      dc.initialNodes.push_back(nodes_[j]->addr);
    }
    Node& node = *nodes_[i];
    node.transport = std::make_unique<Transport>(*this, i);
    node.discovery = std::make_unique<Discovery>(
        std::move(dc), clock_, *node.transport, node.addr, config_.seed * 1'000'003 + i,
        [this, i](std::function<void()> fn) { onTimer(i, fn); });
  }
  const double maxOneWay = side_ / std::numbers::sqrt2 / 2 + config_.jitterMs + 2;
  ring_.resize(static_cast<size_t>(maxOneWay) + 1);
}

Simulation::~Simulation() = default;

Discovery& Simulation::node(size_t i) { return *nodes_.at(i)->discovery; }
const NodeAddr& Simulation::addr(size_t i) const { return nodes_.at(i)->addr; }

double Simulation::trueRttMs(size_t a, size_t b) const {
  double dx = std::abs(nodes_[a]->x - nodes_[b]->x);
  double dy = std::abs(nodes_[a]->y - nodes_[b]->y);
  dx = std::min(dx, side_ - dx);
  dy = std::min(dy, side_ - dy);
  return std::sqrt(dx * dx + dy * dy);
}

long Simulation::indexOf(const PeerId& id) const {
  size_t v = 0;
  if (id.size() < 2 || id[0] != 'n') return -1;
  auto [p, ec] = std::from_chars(id.data() + 1, id.data() + id.size(), v);
  if (ec != std::errc() || p != id.data() + id.size() || v >= nodes_.size()) return -1;
  return static_cast<long>(v);
}

void Simulation::start() {
  std::uniform_int_distribution<int64_t> offset(0, config_.discovery.pingPeriodMs - 1);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    clock_.callAfter(Millis(offset(rng_)),
                     [this, i] { onTimer(i, [this, i] { nodes_[i]->discovery->start(); }); });
  }
}

void Simulation::send(size_t from, const NodeAddr& to, uint8_t type, uint64_t nonce,
                      const std::vector<NodeAddr>* known) {
  Node& src = *nodes_[from];
  ++src.msgs;
  src.bytes += type == kPing ? config_.wire.ping() : config_.wire.pong(*known);
  const long j = indexOf(to.id);
  if (j < 0) return;
  if (config_.lossRate > 0 &&
      std::uniform_real_distribution<double>(0, 1)(rng_) < config_.lossRate) {
    return;
  }
  double oneWay = trueRttMs(from, static_cast<size_t>(j)) / 2;
  if (config_.jitterMs > 0)
    oneWay += std::uniform_real_distribution<double>(0, config_.jitterMs)(rng_);
  const int64_t at = nowMs_ + std::llround(oneWay);
  Event e{static_cast<uint32_t>(from), static_cast<uint32_t>(j), type, nonce, {}};
  if (known) e.known = *known;
  ring_[static_cast<size_t>(at) % ring_.size()].push_back(std::move(e));
}

void Simulation::deliver(Event& e) {
  Node& dst = *nodes_[e.to];
  if (!dst.alive) return;
  if (e.type == kPing) {
    dst.discovery->onPing(nodes_[e.from]->addr, e.nonce);
  } else {
    dst.discovery->onPong(nodes_[e.from]->addr, e.nonce, std::move(e.known));
  }
}

void Simulation::advance(int64_t ms) {
  for (int64_t k = 0; k < ms; ++k) {
    const double cpu0 = threadCpuMicros();
    ++nowMs_;
    clock_.advance(Millis(1));
    auto& bucket = ring_[static_cast<size_t>(nowMs_) % ring_.size()];
    for (size_t b = 0; b < bucket.size(); ++b) {  // zero-delay sends append to this bucket
      Event e = std::move(bucket[b]);
      deliver(e);
    }
    bucket.clear();
    // The step's CPU goes to the round that every node starts in this period.
    const size_t window = static_cast<size_t>((nowMs_ - 1) / config_.discovery.pingPeriodMs) + 1;
    if (cpuByRound_.size() <= window) cpuByRound_.resize(window + 1);
    cpuByRound_[window] += threadCpuMicros() - cpu0;
  }
}

void Simulation::onTimer(size_t i, const std::function<void()>& fn) {
  Node& node = *nodes_[i];
  if (!node.alive) return;
  const uint64_t before = node.discovery->stats().rounds;
  const uint64_t msgs = node.msgs, bytes = node.bytes;
  fn();
  if (node.discovery->stats().rounds == before) return;  // the timeout timer, not a round
  // A round just started: the counters before it cover the node's previous round.
  if (before > 0) commit(i, before, msgs - node.baseMsgs, bytes - node.baseBytes);
  node.baseMsgs = msgs;
  node.baseBytes = bytes;
}

void Simulation::commit(size_t i, uint64_t round, uint64_t msgs, uint64_t bytes) {
  // Pruning at the start of the new round never drops a node within maxPing (the threshold is
  // never below maxPing), so the found count is that of the end of `round`.
  if (perRound_.size() <= round) perRound_.resize(round + 1);
  Accum& a = perRound_[round];
  const double maxPing = static_cast<double>(config_.discovery.maxPingMs);
  size_t found = 0, beyond = 0;
  const std::vector<KnownNode> known = nodes_[i]->discovery->known();
  for (const KnownNode& k : known) {
    const long j = indexOf(k.addr.id);
    if (j < 0 || !nodes_[j]->alive) continue;
    if (trueRttMs(i, static_cast<size_t>(j)) <= maxPing) {
      ++found;
    } else {
      ++beyond;
    }
  }
  const size_t viable = nodes_[i]->viable;
  ++a.nodes;
  a.found += static_cast<double>(found);
  a.viable += static_cast<double>(viable);
  a.complete += found >= viable ? 1 : 0;
  a.worst = std::min(a.worst, viable ? static_cast<double>(found) / viable : 1.0);
  a.known += static_cast<double>(known.size());
  a.beyond += static_cast<double>(beyond);
  a.msgs += msgs;
  a.maxMsgs = std::max(a.maxMsgs, msgs);
  a.bytes += bytes;
}

std::vector<RoundMetrics> Simulation::run(int rounds) {
  const int first = roundsRun_ + 1;
  roundsRun_ += rounds;
  // A node that started at offset o < pingPeriod begins round r + 1 before (r + 1) * pingPeriod,
  // which is when its round r is committed.
  const int64_t until = (roundsRun_ + 1) * config_.discovery.pingPeriodMs;
  if (until > nowMs_) advance(until - nowMs_);
  std::vector<RoundMetrics> out;
  for (int r = first; r <= roundsRun_; ++r) {
    RoundMetrics m;
    m.round = r;
    if (static_cast<size_t>(r) >= perRound_.size()) {
      out.push_back(m);
      continue;
    }
    const Accum& a = perRound_[r];
    const double n = static_cast<double>(std::max<size_t>(1, a.nodes));
    m.nodes = a.nodes;
    m.viableFound = a.viable > 0 ? a.found / a.viable : 1.0;
    m.nodesComplete = static_cast<double>(a.complete) / n;
    m.worstNode = a.worst;
    m.meanViable = a.viable / n;
    m.meanKnown = a.known / n;
    m.keptBeyondMaxPing = a.beyond / n;
    m.messagesPerNode = static_cast<double>(a.msgs) / n;
    m.maxMessagesNode = a.maxMsgs;
    m.bytesPerNode = static_cast<double>(a.bytes) / n;
    if (static_cast<size_t>(r) < cpuByRound_.size()) m.cpuMicrosPerNode = cpuByRound_[r] / n;
    out.push_back(m);
  }
  return out;
}

void Simulation::kill(size_t i) {
  Node& node = *nodes_.at(i);
  if (!node.alive) return;
  node.alive = false;
  node.discovery->stop();
  const double maxPing = static_cast<double>(config_.discovery.maxPingMs);
  for (size_t j = 0; j < nodes_.size(); ++j) {
    if (j != i && trueRttMs(i, j) <= maxPing && nodes_[j]->viable > 0) --nodes_[j]->viable;
  }
}

size_t Simulation::peersKnowing(size_t i) const {
  size_t n = 0;
  for (size_t j = 0; j < nodes_.size(); ++j) {
    if (j != i && nodes_[j]->alive && nodes_[j]->discovery->isKnown(nodes_[i]->addr.id)) ++n;
  }
  return n;
}

}  // namespace mercato::p2p::sim
