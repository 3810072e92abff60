// Unit tests of the discovery engine, driven by hand: a FakeClock, a transport that records what
// the engine sends, and pongs delivered by the test after a chosen RTT.
#include "p2p/discovery/discovery.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace mercato::p2p {
namespace {

struct SentPing {
  NodeAddr to;
  uint64_t nonce;
};
struct SentPong {
  NodeAddr to;
  uint64_t nonce;
  std::vector<NodeAddr> known;
};

class RecordingTransport final : public DiscoveryTransport {
 public:
  void sendPing(const NodeAddr& to, uint64_t nonce) override { pings.push_back({to, nonce}); }
  void sendPong(const NodeAddr& to, uint64_t nonce, const std::vector<NodeAddr>& known) override {
    pongs.push_back({to, nonce, known});
  }
  // The nonce of the last ping sent to `id`, or 0.
  uint64_t lastNonceTo(const PeerId& id) const {
    for (auto it = pings.rbegin(); it != pings.rend(); ++it) {
      if (it->to.id == id) return it->nonce;
    }
    return 0;
  }
  size_t pingsTo(const PeerId& id) const {
    return static_cast<size_t>(std::count_if(pings.begin(), pings.end(),
                                             [&](const SentPing& p) { return p.to.id == id; }));
  }
  std::vector<SentPing> pings;
  std::vector<SentPong> pongs;
};

class RecordingListener final : public DiscoveryListener {
 public:
  void onDiscovered(const NodeAddr& node, int64_t rttMicros) override {
    discovered[node.id] = rttMicros;
  }
  void onLost(const PeerId& id) override { lost.push_back(id); }
  std::map<PeerId, int64_t> discovered;
  std::vector<PeerId> lost;
};

NodeAddr node(int i) {
  return {"peer" + std::to_string(i), "10.0.0." + std::to_string(i) + ":7946"};
}

DiscoveryConfig config(std::vector<NodeAddr> initial = {}) {
  DiscoveryConfig c;
  c.maxPingMs = 50;
  c.pingPeriodMs = 1000;
  c.pingTimeoutMs = 500;
  c.initialNodes = std::move(initial);
  return c;
}

class DiscoveryTest : public ::testing::Test {
 protected:
  void make(DiscoveryConfig c) {
    d = std::make_unique<Discovery>(std::move(c), clock, transport, node(0), 42);
    d->addListener(&listener);
  }
  // Answers every ping sent since `from` (an index into transport.pings) to the nodes in
  // `rttMs`, each after its RTT, in RTT order. Nodes not in the map do not answer.
  void answer(size_t from, const std::map<PeerId, int64_t>& rttMs,
              const std::map<PeerId, std::vector<NodeAddr>>& gossip = {}) {
    std::vector<std::pair<int64_t, SentPing>> due;
    for (size_t i = from; i < transport.pings.size(); ++i) {
      auto it = rttMs.find(transport.pings[i].to.id);
      if (it != rttMs.end()) due.push_back({it->second, transport.pings[i]});
    }
    std::stable_sort(due.begin(), due.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    int64_t elapsed = 0;
    for (const auto& [rtt, ping] : due) {
      clock.advance(Millis(rtt - elapsed));
      elapsed = rtt;
      auto g = gossip.find(ping.to.id);
      d->onPong(ping.to, ping.nonce, g == gossip.end() ? std::vector<NodeAddr>{} : g->second);
    }
  }

  FakeClock clock;
  RecordingTransport transport;
  RecordingListener listener;
  std::unique_ptr<Discovery> d;
};

TEST(DiscoveryConfigTest, ValidateNamesTheBadField) {
  EXPECT_TRUE(config().validate().isOk());
  DiscoveryConfig c = config();
  c.pingTimeoutMs = 1000;
  EXPECT_NE(c.validate().message().find("pingTimeoutMs"), std::string::npos);
  c = config();
  c.maxPingMs = 0;
  EXPECT_NE(c.validate().message().find("maxPingMs"), std::string::npos);
  c = config({NodeAddr{"peer1", ""}});
  EXPECT_NE(c.validate().message().find("initialNodes[0]"), std::string::npos);
}

TEST_F(DiscoveryTest, ThresholdWidensBelowMinKnownAndIsFiniteWithNone) {
  std::vector<NodeAddr> initial;
  for (int i = 1; i <= 10; ++i) initial.push_back(node(i));
  make(config(initial));
  // Nothing known: as if one node were in range, maxPing * sqrt(10).
  EXPECT_EQ(d->threshold(), 158114);
  d->round();
  answer(0, {{"peer1", 10}, {"peer2", 10}, {"peer3", 10}, {"peer4", 10}});
  EXPECT_EQ(d->knownCount(), 4u);
  EXPECT_EQ(d->threshold(), 79057);  // 50 ms * sqrt(10 / 4)
  d->round();
  answer(
      0,
      {{"peer5", 20}, {"peer6", 20}, {"peer7", 20}, {"peer8", 20}, {"peer9", 20}, {"peer10", 20}});
  EXPECT_EQ(d->knownCount(), 10u);
  EXPECT_EQ(d->threshold(), 50000);
}

TEST_F(DiscoveryTest, KeepsAnsweringNodeWithItsRttAndReportsIt) {
  make(config({node(1)}));
  d->start();
  ASSERT_EQ(transport.pingsTo("peer1"), 1u);
  answer(0, {{"peer1", 20}});
  ASSERT_EQ(d->knownCount(), 1u);
  EXPECT_EQ(d->known()[0].rttMicros, 20000);
  EXPECT_EQ(d->known()[0].addr, node(1));
  EXPECT_EQ(listener.discovered.at("peer1"), 20000);
  EXPECT_EQ(d->stats().pongsReceived, 1u);
  EXPECT_EQ(d->stats().discovered, 1u);
}

TEST_F(DiscoveryTest, PrunesNodesBeyondTheThresholdOnceEnoughAreInRange) {
  make(config({node(11)}));
  d->round();
  // peer11 alone is within the widened threshold (158 ms); it tells us about ten nodes, which
  // are probed at once.
  std::vector<NodeAddr> close;
  std::map<PeerId, int64_t> closeRtt;
  for (int i = 1; i <= 10; ++i) {
    close.push_back(node(i));
    closeRtt[node(i).id] = 10;
  }
  answer(0, {{"peer11", 120}}, {{"peer11", close}});
  ASSERT_TRUE(d->isKnown("peer11"));
  ASSERT_EQ(transport.pings.size(), 11u);
  answer(1, closeRtt);
  ASSERT_EQ(d->knownCount(), 11u);
  // Ten nodes within maxPing: the threshold is maxPing again.
  EXPECT_EQ(d->threshold(), 50000);
  EXPECT_TRUE(d->isKnown("peer11"));  // pruning happens at the start of a round
  d->round();
  EXPECT_FALSE(d->isKnown("peer11"));
  EXPECT_EQ(d->knownCount(), 10u);
  EXPECT_EQ(d->stats().pruned, 1u);
  EXPECT_NE(std::find(listener.lost.begin(), listener.lost.end(), "peer11"), listener.lost.end());
  // A pruned node is remembered as far: not pinged again next round, even when gossiped.
  const size_t before = transport.pingsTo("peer11");
  d->onPing(node(11), 5);
  d->round();
  EXPECT_EQ(transport.pingsTo("peer11"), before);
}

TEST_F(DiscoveryTest, KeepsOnlyTheClosestWhenNothingIsInRange) {
  make(config({node(1), node(2), node(3)}));
  d->round();
  answer(0, {{"peer1", 400}, {"peer2", 250}, {"peer3", 300}});
  // All beyond the widest threshold (158 ms): the closest one stays, the others go.
  d->round();
  std::vector<KnownNode> k = d->known();
  ASSERT_EQ(k.size(), 1u);
  EXPECT_EQ(k[0].addr.id, "peer2");
  // It keeps being pinged and kept.
  const size_t mark = transport.pings.size();
  answer(mark - 1, {{"peer2", 250}});
  d->round();
  EXPECT_TRUE(d->isKnown("peer2"));
}

TEST_F(DiscoveryTest, ClosestNodesGossipIsFollowedWhenNothingIsInRange) {
  make(config({node(1)}));
  d->round();
  answer(0, {{"peer1", 300}}, {{"peer1", {node(2)}}});
  // peer1 is far but the only one: kept, and its list is probed.
  EXPECT_TRUE(d->isKnown("peer1"));
  EXPECT_EQ(transport.pingsTo("peer2"), 1u);
}

TEST_F(DiscoveryTest, WithNothingWithinMaxPingEveryAnswersGossipIsFollowed) {
  // Two isolated nodes can keep each other as their closest and have nothing else to gossip;
  // while nothing is within maxPing, a far node's list is searched too.
  make(config({node(1), node(2)}));
  d->round();
  answer(0, {{"peer1", 110}, {"peer2", 300}}, {{"peer2", {node(3)}}});
  EXPECT_TRUE(d->isKnown("peer1"));
  EXPECT_FALSE(d->isKnown("peer2"));
  EXPECT_EQ(transport.pingsTo("peer3"), 1u);
}

TEST_F(DiscoveryTest, OnceSomethingIsInRangeFarNodesGossipIsNotFollowed) {
  make(config({node(1), node(2)}));
  d->round();
  answer(0, {{"peer1", 10}, {"peer2", 300}}, {{"peer2", {node(3)}}});
  EXPECT_TRUE(d->isKnown("peer1"));
  EXPECT_EQ(transport.pingsTo("peer3"), 0u);
}

TEST_F(DiscoveryTest, ANodeThatStopsAnsweringIsLostWithinThreePeriods) {
  make(config({node(1)}));
  d->start();
  answer(0, {{"peer1", 10}});
  ASSERT_TRUE(d->isKnown("peer1"));
  const int64_t lastAnswerMs = 10;
  // peer1 dies now. Rounds keep pinging it; nobody answers.
  int64_t nowMs = lastAnswerMs;
  while (listener.lost.empty() && nowMs < 5000) {
    clock.advance(Millis(1));
    ++nowMs;
  }
  ASSERT_EQ(listener.lost, std::vector<PeerId>{"peer1"});
  EXPECT_LT(nowMs - lastAnswerMs, 3 * 1000);
  EXPECT_FALSE(d->isKnown("peer1"));
  EXPECT_EQ(d->stats().lost, 1u);
  EXPECT_GE(d->stats().timeouts, 2u);
}

TEST_F(DiscoveryTest, OneMissedPingIsNotALoss) {
  make(config({node(1)}));
  d->start();
  answer(0, {{"peer1", 10}});   // t = 10 ms
  clock.advance(Millis(990));   // t = 1000: round 2, its ping goes unanswered
  clock.advance(Millis(1000));  // t = 2000: the miss was counted at 1500; round 3
  EXPECT_EQ(d->stats().timeouts, 1u);
  answer(transport.pings.size() - 1, {{"peer1", 10}});  // round 3 is answered
  clock.advance(Millis(2000));       // rounds 4 and 5 unanswered: one miss at 3500, one at 4500...
  EXPECT_TRUE(d->isKnown("peer1"));  // ...the second is counted at 4500
  clock.advance(Millis(500));
  EXPECT_FALSE(d->isKnown("peer1"));
  EXPECT_EQ(d->stats().lost, 1u);
}

TEST_F(DiscoveryTest, PongWithUnknownNonceIsIgnoredAndCounted) {
  make(config({node(1)}));
  d->round();
  const uint64_t nonce = transport.lastNonceTo("peer1");
  d->onPong(node(1), nonce + 1, {node(5)});
  EXPECT_EQ(d->stats().unsolicitedPongs, 1u);
  EXPECT_FALSE(d->isKnown("peer1"));
  // The right nonce from another peer is not an answer either.
  d->onPong(node(2), nonce, {});
  EXPECT_EQ(d->stats().unsolicitedPongs, 2u);
  EXPECT_FALSE(d->isKnown("peer2"));
  // Nor is the right answer after the timeout.
  clock.advance(Millis(501));
  d->onPong(node(1), nonce, {});
  EXPECT_EQ(d->stats().unsolicitedPongs, 3u);
  EXPECT_FALSE(d->isKnown("peer1"));
  EXPECT_EQ(transport.pingsTo("peer5"), 0u);  // the forged gossip was not used
}

TEST_F(DiscoveryTest, AnsweredNonceCannotBeReplayed) {
  make(config({node(1)}));
  d->round();
  const uint64_t nonce = transport.lastNonceTo("peer1");
  clock.advance(Millis(10));
  d->onPong(node(1), nonce, {});
  d->onPong(node(1), nonce, {});
  EXPECT_EQ(d->stats().pongsReceived, 1u);
  EXPECT_EQ(d->stats().unsolicitedPongs, 1u);
}

TEST_F(DiscoveryTest, GossipedNodesAreKeptOnlyAfterAnsweringOurPing) {
  make(config({node(1)}));
  d->round();
  answer(0, {{"peer1", 10}}, {{"peer1", {node(2), node(3)}}});
  // Learned, probed, but not kept.
  EXPECT_FALSE(d->isKnown("peer2"));
  EXPECT_FALSE(d->isKnown("peer3"));
  ASSERT_EQ(transport.pingsTo("peer2"), 1u);
  ASSERT_EQ(transport.pingsTo("peer3"), 1u);
  // peer3 is a forgery (nothing answers from it); a pong claiming to be peer3 with a wrong
  // nonce is ignored. peer2 answers properly.
  d->onPong(node(3), 12345, {});
  answer(1, {{"peer2", 15}});
  EXPECT_TRUE(d->isKnown("peer2"));
  EXPECT_FALSE(d->isKnown("peer3"));
  clock.advance(Millis(600));
  EXPECT_FALSE(d->isKnown("peer3"));
}

TEST_F(DiscoveryTest, PingIsAnsweredWithKnownNodesAndThePingerIsProbed) {
  DiscoveryConfig c = config({node(1), node(2), node(3), node(4), node(5)});
  c.maxGossipNodes = 3;
  make(c);
  d->round();
  answer(0, {{"peer1", 5}, {"peer2", 5}, {"peer3", 5}, {"peer4", 5}, {"peer5", 5}});
  ASSERT_EQ(d->knownCount(), 5u);
  d->onPing(node(9), 777);
  ASSERT_EQ(transport.pongs.size(), 1u);
  EXPECT_EQ(transport.pongs[0].to, node(9));
  EXPECT_EQ(transport.pongs[0].nonce, 777u);
  EXPECT_EQ(transport.pongs[0].known.size(), 3u);  // bounded by maxGossipNodes
  for (const NodeAddr& a : transport.pongs[0].known) EXPECT_TRUE(d->isKnown(a.id));
  // The pinger is not kept on its word; it is probed next round.
  EXPECT_FALSE(d->isKnown("peer9"));
  d->round();
  EXPECT_EQ(transport.pingsTo("peer9"), 1u);
  // A known node asking for the list does not get itself back.
  d->onPing(node(1), 778);
  for (const NodeAddr& a : transport.pongs.back().known) EXPECT_NE(a.id, "peer1");
}

TEST_F(DiscoveryTest, SelfIsNeverProbedNorAnswered) {
  make(config({node(0), node(1)}));
  d->round();
  EXPECT_EQ(transport.pingsTo("peer0"), 0u);
  answer(0, {{"peer1", 5}}, {{"peer1", {node(0)}}});
  EXPECT_EQ(transport.pingsTo("peer0"), 0u);
  d->onPing(node(0), 1);
  EXPECT_TRUE(transport.pongs.empty());
}

TEST_F(DiscoveryTest, WorkPerRoundIsBoundedWhateverTheGossip) {
  DiscoveryConfig c = config({node(1)});
  c.maxCandidates = 50;
  c.maxProbesPerRound = 20;
  make(c);
  d->round();
  std::vector<NodeAddr> flood;
  for (int i = 100; i < 100 + 64; ++i) flood.push_back(node(i));
  // A pong may carry at most maxGossipNodes entries; the rest of a big list is not read.
  answer(0, {{"peer1", 5}}, {{"peer1", flood}});
  EXPECT_EQ(d->stats().gossipEntriesReceived, c.maxGossipNodes);
  // Probes in one round never exceed the budget, however many candidates there are.
  EXPECT_LE(d->stats().probesSent, c.maxProbesPerRound);
  for (int r = 0; r < 3; ++r) {
    const size_t mark = transport.pings.size();
    d->round();
    EXPECT_LE(transport.pings.size() - mark, d->knownCount() + c.maxProbesPerRound);
    EXPECT_LE(d->stats().candidates, c.maxCandidates);
  }
}

TEST_F(DiscoveryTest, RandomHostileTrafficKeepsEveryBound) {
  // Gossip is untrusted: random pings, pongs with guessed and replayed nonces, lists full of
  // self, duplicates, empty fields and unknown nodes. Nothing crashes and no bound is exceeded.
  DiscoveryConfig c = config({node(1), node(2)});
  c.maxKnown = 20;
  c.maxCandidates = 30;
  c.maxProbesPerRound = 10;
  c.farMemory = 40;
  make(c);
  d->start();
  std::mt19937_64 rng(3);
  auto randomNode = [&] {
    switch (rng() % 8) {
      case 0:
        return node(0);  // ourselves
      case 1:
        return NodeAddr{"", "1.2.3.4:5"};
      case 2:
        return NodeAddr{"peer" + std::to_string(rng() % 5), ""};
      default:
        return node(static_cast<int>(rng() % 500));
    }
  };
  for (int i = 0; i < 20000; ++i) {
    switch (rng() % 4) {
      case 0:
        d->onPing(randomNode(), rng());
        break;
      case 1: {  // a real answer to one of our pings, with a hostile list
        if (transport.pings.empty()) break;
        const SentPing& p = transport.pings[rng() % transport.pings.size()];
        std::vector<NodeAddr> list(rng() % 100);
        for (NodeAddr& a : list) a = randomNode();
        d->onPong(p.to, p.nonce, std::move(list));
        break;
      }
      case 2:
        d->onPong(randomNode(), rng(), {randomNode(), randomNode()});
        break;
      default:
        clock.advance(Millis(static_cast<int64_t>(rng() % 300)));
    }
    ASSERT_LE(d->knownCount(), c.maxKnown);
    ASSERT_LE(d->stats().candidates, c.maxCandidates);
    ASSERT_FALSE(d->isKnown("peer0"));
    ASSERT_FALSE(d->isKnown(""));
  }
  for (const SentPong& p : transport.pongs) ASSERT_LE(p.known.size(), c.maxGossipNodes);
  for (const SentPing& p : transport.pings) ASSERT_FALSE(p.to.id.empty() || p.to.endpoint.empty());
}

TEST_F(DiscoveryTest, StopCancelsTimersAndStartResumes) {
  make(config({node(1)}));
  d->start();
  answer(0, {{"peer1", 10}});
  const size_t afterStart = transport.pings.size();
  d->stop();
  clock.advance(Millis(5000));
  EXPECT_EQ(transport.pings.size(), afterStart);
  d->start();
  EXPECT_GT(transport.pings.size(), afterStart);
}

TEST_F(DiscoveryTest, TimerCallbacksGoThroughPost) {
  std::vector<std::function<void()>> posted;
  d = std::make_unique<Discovery>(config({node(1)}), clock, transport, node(0), 1,
                                  [&](std::function<void()> fn) { posted.push_back(fn); });
  d->start();
  answer(0, {{"peer1", 10}});
  const size_t afterStart = transport.pings.size();
  clock.advance(Millis(1000));
  EXPECT_EQ(transport.pings.size(), afterStart);  // not run on the clock's thread
  ASSERT_FALSE(posted.empty());
  for (auto& fn : std::vector(posted)) fn();
  EXPECT_GT(transport.pings.size(), afterStart);
  // A callback posted before the engine is destroyed is a no-op afterwards.
  clock.advance(Millis(1000));
  auto late = posted.back();
  d.reset();
  late();
}

}  // namespace
}  // namespace mercato::p2p
