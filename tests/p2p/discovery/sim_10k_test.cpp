// The 10,000-node simulation against the 1,000-node one at the same density (issue 6): the
// share of viable neighbours found after 2 rounds stays >= 99%, and the messages and bytes per
// node per round do not grow with N. Labelled `slow` (about 90 s of CPU, ~1 GB of memory).
#include "sim.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace mercato::p2p::sim {
namespace {

void print(size_t n, const std::vector<RoundMetrics>& ms) {
  for (const RoundMetrics& m : ms) {
    std::printf("N=%zu round %d: viable found %.4f, msgs/node %.1f, bytes/node %.0f\n", n, m.round,
                m.viableFound, m.messagesPerNode, m.bytesPerNode);
  }
}

SimConfig withNodes(size_t n) {
  SimConfig c;
  c.nodes = n;
  return c;
}

TEST(DiscoverySim, TenThousandNodesCostTheSamePerNodeAsAThousand) {
  Simulation small(withNodes(1000));
  small.start();
  const std::vector<RoundMetrics> a = small.run(2);
  Simulation big(withNodes(10000));
  big.start();
  const std::vector<RoundMetrics> b = big.run(2);
  print(1000, a);
  print(10000, b);
  EXPECT_GE(b[1].viableFound, 0.99);
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_NEAR(b[r].meanViable, a[r].meanViable, 1.0);  // same density
    EXPECT_LT(b[r].messagesPerNode, 1.15 * a[r].messagesPerNode);
    EXPECT_GT(b[r].messagesPerNode, 0.85 * a[r].messagesPerNode);
    EXPECT_LT(b[r].bytesPerNode, 1.15 * a[r].bytesPerNode);
  }
}

}  // namespace
}  // namespace mercato::p2p::sim
