// p2p_sim: the discovery simulation at 1k and 10k nodes (tests/p2p/discovery/sim.hpp), printing
// per round the share of viable neighbours found, messages, bytes and simulator CPU per node.
// Results are recorded in bench/RESULTS.md ("P2P discovery (issue 6)").
//
//   p2p_sim [--nodes 1000,10000] [--rounds 6] [--neighbours 25] [--jitter-ms 0] [--loss 0]
//           [--nearby-seeds 2] [--random-seeds 1] [--private] [--seed 1]
//   p2p_sim --engine-only   one engine in steady state, CPU per round at 25/50/100 neighbours
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "sim.hpp"

#include <time.h>

using namespace mercato::p2p;

namespace {

double threadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

struct Capture final : DiscoveryTransport {
  void sendPing(const NodeAddr& to, uint64_t nonce) override { pings.push_back({to, nonce}); }
  void sendPong(const NodeAddr&, uint64_t, const std::vector<NodeAddr>&) override { ++pongs; }
  std::vector<std::pair<NodeAddr, uint64_t>> pings;
  uint64_t pongs = 0;
};

// One engine in steady state, alone in the process (its state stays in the caches, as in a
// real node): `neighbours` nodes within maxPing (RTT 4..48 ms), 3x as many in the ring beyond
// (55..100 ms). Each round it pings its neighbours, gets their pongs (24 nodes drawn from the
// neighbourhood and the ring) and answers as many pings. Returns CPU us per round and the
// number of nodes it keeps.
std::pair<double, size_t> engineOnly(size_t neighbours, int rounds) {
  mercato::FakeClock clock;
  Capture t;
  DiscoveryConfig c;
  const size_t all = neighbours * 4;
  auto addr = [](size_t i) {
    return NodeAddr{"mpeer1" + std::string(50, 'a') + std::to_string(1000 + i),
                    "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":7946"};
  };
  std::vector<int64_t> rttMs(all + 1);
  std::mt19937_64 rng(7);
  for (size_t i = 1; i <= all; ++i) {
    c.initialNodes.push_back(addr(i));
    rttMs[i] = i <= neighbours ? 4 + static_cast<int64_t>(rng() % 45)
                               : 55 + static_cast<int64_t>(rng() % 46);
  }
  c.maxProbesPerRound = all;  // let the warm-up measure everyone in one round
  Discovery d(c, clock, t, addr(0), 1);
  auto answerAll = [&] {
    std::vector<std::pair<int64_t, std::pair<NodeAddr, uint64_t>>> due;
    for (auto& p : t.pings) due.push_back({rttMs[std::stoul(p.first.id.substr(56)) - 1000], p});
    t.pings.clear();
    std::sort(due.begin(), due.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    int64_t now = 0;
    for (auto& [rtt, p] : due) {
      clock.advance(mercato::Millis(rtt - now));
      now = rtt;
      std::vector<NodeAddr> gossip;
      for (int k = 0; k < 24; ++k) gossip.push_back(addr(1 + rng() % all));
      d.onPong(p.first, p.second, std::move(gossip));
    }
    return now;
  };
  double cpu = 0;
  for (int r = 0; r < rounds + 10; ++r) {
    const double t0 = threadCpuMicros();
    d.round();
    const int64_t spent = answerAll();
    for (size_t i = 1; i <= neighbours; ++i) d.onPing(addr(i), rng());
    if (r >= 10) cpu += threadCpuMicros() - t0;  // the first rounds are the warm-up
    clock.advance(mercato::Millis(c.pingPeriodMs - spent));
  }
  return {cpu / rounds, d.knownCount()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Latency-bounded discovery simulation"};
  std::string nodesList = "1000,10000";
  int rounds = 6;
  sim::SimConfig base;
  app.add_option("--nodes", nodesList, "comma-separated node counts");
  app.add_option("--rounds", rounds, "rounds to simulate");
  app.add_option("--neighbours", base.neighbours, "expected nodes within maxPing (density)");
  app.add_option("--jitter-ms", base.jitterMs, "uniform extra one-way delay [0, j) ms");
  app.add_option("--loss", base.lossRate, "message loss probability");
  app.add_option("--nearby-seeds", base.nearbySeeds, "initial nodes within 2 x maxPing");
  app.add_option("--random-seeds", base.randomSeeds, "initial nodes anywhere");
  app.add_option("--max-ping-ms", base.discovery.maxPingMs, "maxPing");
  app.add_option("--probes", base.discovery.maxProbesPerRound, "maxProbesPerRound");
  app.add_option("--gossip", base.discovery.maxGossipNodes, "maxGossipNodes");
  app.add_flag("--private", base.wire.privateNetwork, "size messages as in a private network");
  app.add_option("--seed", base.seed, "RNG seed");
  bool engine = false;
  app.add_flag("--engine-only", engine,
               "measure one engine in steady state (CPU per round without a simulator)");
  CLI11_PARSE(app, argc, argv);
  if (engine) {
    for (size_t k : {25, 50, 100}) {
      const auto [cpu, known] = engineOnly(k, 2000);
      std::printf("one engine, %zu neighbours (%zu kept): %.1f us CPU per round\n", k, known, cpu);
    }
    return 0;
  }

  std::vector<size_t> counts;
  std::stringstream ss(nodesList);
  for (std::string item; std::getline(ss, item, ',');) counts.push_back(std::stoul(item));

  const DiscoveryConfig& d = base.discovery;
  std::printf(
      "maxPing %lld ms, pingPeriod %lld ms, pingTimeout %lld ms, minKnown %zu, gossip %zu, "
      "probes/round %zu; density %.0f nodes within maxPing; seeds %zu nearby + %zu random; "
      "jitter %.1f ms; loss %.3f; %s network\n",
      static_cast<long long>(d.maxPingMs), static_cast<long long>(d.pingPeriodMs),
      static_cast<long long>(d.pingTimeoutMs), d.minKnown, d.maxGossipNodes, d.maxProbesPerRound,
      base.neighbours, base.nearbySeeds, base.randomSeeds, base.jitterMs, base.lossRate,
      base.wire.privateNetwork ? "private" : "public");
  for (size_t n : counts) {
    sim::SimConfig c = base;
    c.nodes = n;
    const auto t0 = std::chrono::steady_clock::now();
    sim::Simulation s(c);
    s.start();
    const std::vector<sim::RoundMetrics> ms = s.run(rounds);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\nN=%zu (torus side %.0f ms RTT), simulated in %.1f s wall\n", n, s.sideMs(),
                wall);
    std::printf("%5s %9s %9s %8s %8s %8s %7s %9s %8s %10s %9s\n", "round", "viable%", "complete%",
                "worst%", "viable", "known", "beyond", "msgs/node", "max", "bytes/node", "cpu_us");
    for (const sim::RoundMetrics& m : ms) {
      std::printf("%5d %9.3f %9.2f %8.1f %8.1f %8.1f %7.2f %9.1f %8llu %10.0f %9.1f\n", m.round,
                  100 * m.viableFound, 100 * m.nodesComplete, 100 * m.worstNode, m.meanViable,
                  m.meanKnown, m.keptBeyondMaxPing, m.messagesPerNode,
                  static_cast<unsigned long long>(m.maxMessagesNode), m.bytesPerNode,
                  m.cpuMicrosPerNode);
    }
  }
  return 0;
}
