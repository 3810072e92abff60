// A discrete-event simulator for the discovery engine: N virtual nodes in one process, each a
// real p2p::Discovery, on one FakeClock, exchanging pings and pongs through an event queue that
// delivers each message after its one-way latency.
//
// Nodes sit at uniform random positions on a square torus (no edges, so every node sees the same
// density); the RTT between two nodes is their distance, in milliseconds. The torus side grows
// with sqrt(N) so that the expected number of nodes within maxPing (`neighbours`) is the same at
// every N. Latencies are whole milliseconds (FakeClock's resolution): a one-way delay is
// round(rtt / 2 + jitter), so a measured RTT is within 1 ms of the true one, plus jitter.
//
// Metrics are taken per node at its own round boundaries (just before its round r+1 runs, i.e.
// after r complete rounds) and summed per round: the share of viable neighbours found (nodes
// truly within maxPing), messages and bytes sent; and the simulator's CPU time per round.
//
// Used by sim_test.cpp and bench/p2p_sim.cpp. Thread-safety: single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "p2p/discovery/discovery.hpp"

namespace mercato::p2p::sim {

// Bytes of one discovery datagram (UDP payload) in the p2p wire format (src/p2p/wire.hpp,
// docs/p2p.md "Wire protocol"):
//   header "MP2P" | version | kind | network id [16]                         22
//   private networks only: nonce [24] + Poly1305 tag [16]                     40
//   message: type | sender key [32] | seq u64 | time u64 | body len u16 | sig [64]  115
//   ping body: nonce u64                                                      8
//   pong body: nonce u64 | count u8 | count x (key [32] | len u8 | endpoint)  9 + 33 + |endpoint|
// IP and UDP headers (28 bytes over IPv4) are not included.
struct WireSizeModel {
  bool privateNetwork = false;
  size_t ping() const;
  size_t pong(const std::vector<NodeAddr>& known) const;
};

struct SimConfig {
  size_t nodes = 1000;
  double neighbours = 25;  // expected nodes within maxPing of a node: the density
  double jitterMs = 0;     // each one-way delay gets a uniform [0, jitterMs) extra
  double lossRate = 0;     // probability that a message is lost
  // Initial nodes of each node: `nearbySeeds` drawn among the nodes within
  // nearbyRadius x maxPing (an operator configuring seeds in its region), plus `randomSeeds`
  // drawn from the whole network.
  size_t nearbySeeds = 2;
  double nearbyRadius = 2.0;
  size_t randomSeeds = 1;
  DiscoveryConfig discovery;  // initialNodes are filled in per node
  WireSizeModel wire;
  uint64_t seed = 1;
};

struct RoundMetrics {
  int round = 0;                 // after this many rounds
  size_t nodes = 0;              // live nodes measured
  double viableFound = 0;        // sum found / sum viable (nodes truly within maxPing)
  double nodesComplete = 0;      // share of nodes that found every viable neighbour
  double worstNode = 0;          // the lowest per-node share
  double meanViable = 0;         // viable neighbours per node
  double meanKnown = 0;          // kept nodes per node
  double keptBeyondMaxPing = 0;  // kept nodes per node whose true RTT > maxPing (widening)
  double messagesPerNode = 0;    // pings + pongs sent in the round, per node
  uint64_t maxMessagesNode = 0;  // the busiest node's messages in the round
  double bytesPerNode = 0;       // per the WireSizeModel
  // Thread CPU time of the whole simulator (engines, event queue, metrics) during the period in
  // which every node starts this round, per node: an upper bound on the engine's CPU.
  double cpuMicrosPerNode = 0;
};

class Simulation {
 public:
  explicit Simulation(SimConfig config);
  ~Simulation();

  // Starts every node at a random time in the first ping period.
  void start();
  // Advances until every live node has completed `rounds` more rounds; returns their metrics.
  std::vector<RoundMetrics> run(int rounds);
  // Advances the clock by `ms` (delivering messages, firing rounds).
  void advance(int64_t ms);

  // Stops node i and drops every message to or from it (a kill -9).
  void kill(size_t i);
  // Live nodes that keep node i in their known set.
  size_t peersKnowing(size_t i) const;

  size_t size() const { return nodes_.size(); }
  Discovery& node(size_t i);
  const NodeAddr& addr(size_t i) const;
  double trueRttMs(size_t a, size_t b) const;
  double sideMs() const { return side_; }
  int64_t nowMs() const { return nowMs_; }
  FakeClock& clock() { return clock_; }

 private:
  struct Node;
  struct Event;
  class Transport;
  struct Accum;

  void send(size_t from, const NodeAddr& to, uint8_t type, uint64_t nonce,
            const std::vector<NodeAddr>* known);
  void deliver(Event& e);
  void commit(size_t i, uint64_t round, uint64_t msgs, uint64_t bytes);
  void onTimer(size_t i, const std::function<void()>& fn);
  long indexOf(const PeerId& id) const;

  SimConfig config_;
  FakeClock clock_;
  std::mt19937_64 rng_;
  double side_ = 0;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::vector<Event>> ring_;  // ring_[t % size]: messages delivered at ms t
  int64_t nowMs_ = 0;
  int roundsRun_ = 0;
  std::vector<Accum> perRound_;
  std::vector<double> cpuByRound_;  // thread CPU us of the period in which nodes start round r
};

}  // namespace mercato::p2p::sim
