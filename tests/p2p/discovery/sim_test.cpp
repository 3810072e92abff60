// The discovery engine at scale, in the simulator (sim.hpp): 1,000 nodes, cold start (every node
// starts within the first period from its initial nodes). Goal from issue 6: at least 99% of
// the viable neighbours (nodes truly within maxPing) found after 2 rounds. The 10,000-node
// comparison is in sim_10k_test.cpp (label `slow`).
#include "sim.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace mercato::p2p::sim {
namespace {

void print(size_t n, const std::vector<RoundMetrics>& ms) {
  for (const RoundMetrics& m : ms) {
    std::printf("N=%zu round %d: viable found %.4f, complete %.4f, msgs/node %.1f (max %llu)\n", n,
                m.round, m.viableFound, m.nodesComplete, m.messagesPerNode,
                static_cast<unsigned long long>(m.maxMessagesNode));
  }
}

SimConfig withNodes(size_t n) {
  SimConfig c;
  c.nodes = n;
  return c;
}

TEST(DiscoverySim, ThousandNodesFind99PercentOfViableNeighboursInTwoRounds) {
  Simulation s(withNodes(1000));
  s.start();
  const std::vector<RoundMetrics> ms = s.run(6);
  print(1000, ms);
  EXPECT_GE(ms[1].viableFound, 0.99);  // the goal
  EXPECT_GE(ms[1].nodesComplete, 0.99);
  EXPECT_GE(ms[3].viableFound, 0.999);
  // In steady state a node pings its ~25 neighbours and answers theirs (~52 messages), plus
  // the occasional re-probe of the nodes just beyond maxPing; the convergence rounds stay
  // within the probe budget.
  EXPECT_LT(ms[5].messagesPerNode, 80);
  for (const RoundMetrics& m : ms) {
    EXPECT_LT(m.messagesPerNode, 2.0 * (26 + 128));
  }
}

TEST(DiscoverySim, FarInitialNodesOnlyStillConvergeThroughTheRing) {
  // Every node starts from 3 random nodes anywhere: each walks towards its region through the
  // closest node it knows, and groups that grew apart are joined through the ring gossip.
  SimConfig c = withNodes(1000);
  c.nearbySeeds = 0;
  c.randomSeeds = 3;
  Simulation s(c);
  s.start();
  const std::vector<RoundMetrics> ms = s.run(4);
  print(1000, ms);
  EXPECT_GE(ms[3].viableFound, 0.99);
}

TEST(DiscoverySim, KilledNodesVanishFromTheirPeersWithinThreePeriods) {
  Simulation s(withNodes(1000));
  s.start();
  s.run(3);
  const std::vector<size_t> victims = {3, 141, 592, 653, 589};
  for (size_t v : victims) {
    ASSERT_GT(s.peersKnowing(v), 0u) << "node " << v;
    s.kill(v);
  }
  s.advance(3 * s.node(0).config().pingPeriodMs);
  for (size_t v : victims) EXPECT_EQ(s.peersKnowing(v), 0u) << "node " << v;
  // The rest of the overlay is intact.
  const std::vector<RoundMetrics> after = s.run(1);
  EXPECT_GE(after[0].viableFound, 0.999);
}

TEST(DiscoverySim, JitterAndLossSlowConvergenceButDoNotBreakIt) {
  // Jitter makes nodes just inside maxPing measure just outside it; the minimum of a few
  // samples recovers most of them. (With 2 ms of jitter each way the figure is ~97%: a node at
  // 49.5 ms rarely measures <= 50 ms.)
  SimConfig c = withNodes(1000);
  c.jitterMs = 1;
  c.lossRate = 0.01;
  Simulation s(c);
  s.start();
  const std::vector<RoundMetrics> ms = s.run(5);
  print(1000, ms);
  EXPECT_GE(ms[4].viableFound, 0.98);
}

}  // namespace
}  // namespace mercato::p2p::sim
