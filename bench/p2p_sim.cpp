// p2p_sim: the discovery simulation at 1k and 10k nodes (tests/p2p/discovery/sim.hpp), printing
// per round the share of viable neighbours found, messages, bytes and engine CPU per node.
// Results are recorded in bench/RESULTS.md ("P2P discovery (issue 6)").
//
//   p2p_sim [--nodes 1000,10000] [--rounds 6] [--neighbours 25] [--jitter-ms 0] [--loss 0]
//           [--nearby-seeds 2] [--random-seeds 1] [--private] [--seed 1]
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "sim.hpp"

using namespace mercato::p2p;

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
  CLI11_PARSE(app, argc, argv);

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
