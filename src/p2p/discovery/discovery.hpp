// Discovery: the latency-bounded search for the nodes close to this one, in one network.
//
// The engine is transport-independent: it decides whom to ping and what to keep, and asks a
// DiscoveryTransport to send. The owner (p2p transport, or the simulator in tests) delivers the
// authenticated pings and pongs it receives back through onPing() / onPong(). The algorithm is
// described in docs/p2p.md, "Discovery algorithm":
//   - start from config.initialNodes (as candidates);
//   - every pingPeriod (one "round") ping every known node and a bounded number of candidates,
//     measuring RTT on the injected Clock;
//   - keep the nodes whose RTT <= threshold() and merge the node lists they gossip into the
//     candidates; candidates learned during a round are probed in the same round, within the
//     round's probe budget (a latency-bounded search that needs no extra round per hop);
//   - prune known nodes beyond threshold(), except the closest one when nothing is in range
//     (and while nothing at all is within maxPing, follow every answering node's list);
//   - threshold() = maxPing while at least minKnown nodes are within maxPing, and
//     maxPing * sqrt(minKnown / inRange) below that (inRange = 0 counts as 1);
//   - a node that pings us is probed at once (it was told about us, so it is probably near);
//     pongs carry known nodes and 2 nodes of the ring just beyond the threshold, which joins
//     groups of nodes that grew apart from different initial nodes;
//   - a gossiped node is never kept until it has answered our own ping;
//   - a known node that misses lostAfterMisses pings in a row is lost (onLost; a pruned node
//     fires onLost too).
// Every list is bounded (known, candidates, far memory, gossip, probes per round), so the
// messages a node sends per round depend on local density, never on the network's size.
//
// Ownership: the engine keeps references to the Clock and the transport; both must outlive it.
// Listeners are not owned and must be removed before they are destroyed.
//
// Thread-safety: none. One Discovery is owned by one strand: every call (including the
// transport's deliveries) must be serialized by the caller. Timer callbacks from the Clock are
// handed to the `post` function given to the constructor, which must run them on that strand
// (the default runs them inline, which is right for FakeClock and for callers whose clock fires
// on the owning thread).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"

namespace mercato::p2p {

// Opaque to the engine: compared and hashed only. The transport makes it a checksummed
// encoding of the node's Ed25519 key.
using PeerId = std::string;

struct NodeAddr {
  PeerId id;
  std::string endpoint;  // "ip:port"
  bool operator==(const NodeAddr&) const = default;
};

struct DiscoveryConfig {
  int64_t maxPingMs = 50;       // RTT bound of the neighbourhood
  int64_t pingPeriodMs = 1000;  // one round
  // A pong later than this after its ping does not count (a miss). Must be < pingPeriodMs so a
  // node's misses are known before its next round; should be >= maxPingMs * sqrt(minKnown) so
  // the widest threshold can be measured.
  int64_t pingTimeoutMs = 500;
  size_t minKnown = 10;  // below this many nodes within maxPing, the threshold widens
  // Entries in one pong's node list: with IPv4 endpoints a full pong is ~1,350 bytes, one
  // unfragmented datagram.
  size_t maxGossipNodes = 24;
  std::vector<NodeAddr> initialNodes;

  // Bounds that make the per-round cost independent of the network size.
  size_t maxKnown = 256;           // kept nodes; beyond it only the closest are kept
  size_t maxCandidates = 256;      // unverified nodes waiting for a probe
  size_t maxProbesPerRound = 128;  // pings to candidates per round (including in-round chasing)
  size_t farMemory = 1024;         // nodes measured beyond threshold, not re-probed for a while
  // Mean rounds (drawn from [1/2, 3/2] of it) before a node measured beyond the threshold may
  // be probed again. Nodes just beyond it, or that did not answer, get up to 4 tries in
  // consecutive rounds first (the minimum RTT of the tries counts).
  int64_t farRetryRounds = 8;
  int lostAfterMisses = 2;  // consecutive unanswered pings before a known node is lost

  // OK, or invalid_argument naming the field and what is expected.
  Status validate() const;
};

// A kept node as seen by this one.
struct KnownNode {
  NodeAddr addr;
  int64_t rttMicros = 0;  // min of the recent samples (queueing only ever adds delay)
  TimePoint lastSeen{};   // wall time of the last pong
  int misses = 0;         // consecutive unanswered pings
};

struct DiscoveryStats {
  uint64_t rounds = 0;
  uint64_t pingsSent = 0;
  uint64_t pingsReceived = 0;
  uint64_t pongsSent = 0;
  uint64_t pongsReceived = 0;     // accepted pongs (matching an outstanding nonce and sender)
  uint64_t unsolicitedPongs = 0;  // unknown/expired nonce, or the nonce of another peer
  uint64_t candidates = 0;        // current candidate count (a gauge)
  uint64_t candidatesAdded = 0;   // nodes learned (gossip, pings, initialNodes) as candidates
  uint64_t gossipEntriesReceived = 0;
  uint64_t probesSent = 0;  // pings to candidates (subset of pingsSent)
  uint64_t discovered = 0;  // onDiscovered events
  uint64_t pruned = 0;      // known nodes dropped for being beyond threshold
  uint64_t lost = 0;        // known nodes dropped for missing pings
  uint64_t timeouts = 0;    // pings that got no pong in time
};

class DiscoveryTransport {
 public:
  virtual ~DiscoveryTransport() = default;
  // Sends a ping carrying `nonce` to `to`. Fire and forget: a lost ping is a miss.
  virtual void sendPing(const NodeAddr& to, uint64_t nonce) = 0;
  // Answers a ping: echoes its nonce and carries at most maxGossipNodes kept nodes.
  virtual void sendPong(const NodeAddr& to, uint64_t nonce, const std::vector<NodeAddr>& known) = 0;
};

class DiscoveryListener {
 public:
  virtual ~DiscoveryListener() = default;
  // A node entered the kept set (it answered our ping within the threshold).
  virtual void onDiscovered(const NodeAddr& /*node*/, int64_t /*rttMicros*/) {}
  // A kept node left it: it stopped answering, or it is now beyond the threshold.
  virtual void onLost(const PeerId& /*id*/) {}
};

class Discovery {
 public:
  using Post = std::function<void(std::function<void()>)>;

  // REQUIRES: config.validate() is OK; self.id is this node's id (its pings and gossip about
  // itself are ignored). `rngSeed` seeds the nonces and the gossip sampling.
  Discovery(DiscoveryConfig config, Clock& clock, DiscoveryTransport& transport, NodeAddr self,
            uint64_t rngSeed, Post post = nullptr);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Runs a round now and then every pingPeriod on the Clock. A second start() is a no-op.
  void start();
  // Cancels the timers. Known nodes are kept; start() resumes.
  void stop();
  // Runs one round now: counts misses, prunes, pings known nodes and candidates. Arms a timer
  // at pingTimeout that counts this round's misses (so a dead node is lost at the earliest
  // lostAfterMisses periods + pingTimeout after its last answer).
  void round();

  // An authenticated ping from `from`: answered with a pong carrying a sample of the kept nodes.
  // An unknown sender becomes a candidate (it is kept only after it answers our own ping).
  void onPing(const NodeAddr& from, uint64_t nonce);
  // An authenticated pong. Accepted only if `nonce` is outstanding, was sent to `from.id` and
  // has not expired; anything else is ignored and counted in stats().unsolicitedPongs.
  void onPong(const NodeAddr& from, uint64_t nonce, std::vector<NodeAddr> known);

  // The kept nodes, closest first.
  std::vector<KnownNode> known() const;
  size_t knownCount() const { return known_.size(); }
  bool isKnown(const PeerId& id) const { return known_.count(id) != 0; }
  // Where a peer stands: never heard of, waiting for a probe, probe outstanding, kept, or
  // measured beyond the threshold (or silent) and not probed again for a while.
  enum class PeerState { kUnknown, kCandidate, kProbing, kKnown, kFar };
  PeerState stateOf(const PeerId& id) const;
  // The current RTT bound in microseconds.
  int64_t threshold() const;
  DiscoveryStats stats() const;
  const DiscoveryConfig& config() const { return config_; }
  const NodeAddr& self() const { return self_; }

  void addListener(DiscoveryListener* l);
  void removeListener(DiscoveryListener* l);

 private:
  struct Entry {
    KnownNode node;
    std::array<int64_t, 4> samples{};  // the last RTT samples; node.rttMicros is their min
    size_t sampleCount = 0;
  };
  // Candidates are probed in order of (mentions, hint, order): a node gossiped by several of our
  // close nodes lies where their neighbourhoods overlap, around us; hint is the RTT of the
  // closest node that told us about it; order (older first) breaks ties.
  struct CandidateKey {
    int64_t negMentions;  // minus the number of times it was gossiped to us
    int64_t hintMicros;
    uint64_t order;
    PeerId id;
    auto operator<=>(const CandidateKey&) const = default;
  };
  struct Pending {
    NodeAddr to;
    SteadyPoint sentAt;
  };
  // A node probed but not kept: the minimum RTT of its recent probes (-1: never answered),
  // how many probes, and the round before which it is not probed again.
  struct Far {
    int64_t rttMicros;
    int tries;
    uint64_t untilRound;
  };

  TimerId schedule(int64_t delayMs, void (Discovery::*method)());
  void onRoundTimer();
  void onTimeoutTimer();

  void addCandidate(const NodeAddr& addr, int64_t hintMicros);
  bool worthProbing(const PeerId& id) const;
  void probeCandidates(size_t budget);
  void sendPingTo(const NodeAddr& to, bool probe);
  void expirePending();
  void keep(const NodeAddr& addr, int64_t rttMicros);
  void drop(const PeerId& id, bool pruned);
  void pruneBeyondThreshold();
  void rememberFar(const PeerId& id, int64_t rttMicros);
  bool noneWithin(int64_t micros) const;
  void setRtt(Entry& e, int64_t rttMicros);
  std::vector<NodeAddr> gossipSample(const PeerId& exclude);
  std::vector<NodeAddr> knownSample(const PeerId& exclude);
  void noteRing(const NodeAddr& addr, int64_t rttMicros);

  DiscoveryConfig config_;
  Clock& clock_;
  DiscoveryTransport& transport_;
  NodeAddr self_;
  std::mt19937_64 rng_;
  Post post_;
  std::shared_ptr<bool> alive_;  // timer callbacks hold a weak_ptr and skip once it expired

  std::unordered_map<PeerId, Entry> known_;
  std::unordered_map<PeerId, std::pair<NodeAddr, CandidateKey>> candidates_;
  std::set<CandidateKey> candidateOrder_;
  std::unordered_map<PeerId, Far> far_;
  std::unordered_map<uint64_t, Pending> pending_;  // nonce -> our ping
  std::unordered_set<PeerId> probing_;             // candidates with a probe outstanding
  std::vector<DiscoveryListener*> listeners_;
  DiscoveryStats stats_;
  size_t inRange_ = 0;                 // known nodes with rttMicros <= maxPing
  std::vector<NodeAddr> gossipCache_;  // the known nodes' addresses, rebuilt when dirty
  bool gossipDirty_ = true;
  std::vector<NodeAddr> ring_;  // recently measured nodes within 2 x threshold, not kept
  size_t ringNext_ = 0;
  uint64_t roundNo_ = 0;
  uint64_t nextOrder_ = 0;
  size_t probesThisRound_ = 0;
  bool started_ = false;
  TimerId roundTimer_ = 0;
  TimerId timeoutTimer_ = 0;
};

}  // namespace mercato::p2p
