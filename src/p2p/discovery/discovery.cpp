#include "p2p/discovery/discovery.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace mercato::p2p {

namespace {

constexpr int kFarTries = 4;
constexpr size_t kRingSize = 32;  // remembered ring nodes (just beyond the threshold)
constexpr size_t kRingSlots = 2;  // ring nodes in each pong

int64_t microsBetween(SteadyPoint from, SteadyPoint to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

}  // namespace

Status DiscoveryConfig::validate() const {
  auto positive = [](const char* field, int64_t v) -> Status {
    if (v > 0) return Status::ok();
    return invalidArgument(std::string(field) + ": expected a positive number, got " +
                           std::to_string(v));
  };
  for (auto [field, v] : {std::pair{"maxPingMs", maxPingMs},
                          {"pingPeriodMs", pingPeriodMs},
                          {"pingTimeoutMs", pingTimeoutMs},
                          {"minKnown", static_cast<int64_t>(minKnown)},
                          {"maxGossipNodes", static_cast<int64_t>(maxGossipNodes)},
                          {"maxKnown", static_cast<int64_t>(maxKnown)},
                          {"maxCandidates", static_cast<int64_t>(maxCandidates)},
                          {"maxProbesPerRound", static_cast<int64_t>(maxProbesPerRound)},
                          {"farRetryRounds", farRetryRounds},
                          {"lostAfterMisses", static_cast<int64_t>(lostAfterMisses)}}) {
    if (Status s = positive(field, v); !s) return s;
  }
  if (pingTimeoutMs >= pingPeriodMs) {
    return invalidArgument("pingTimeoutMs: expected less than pingPeriodMs (" +
                           std::to_string(pingPeriodMs) + "), got " +
                           std::to_string(pingTimeoutMs));
  }
  for (size_t i = 0; i < initialNodes.size(); ++i) {
    if (initialNodes[i].id.empty() || initialNodes[i].endpoint.empty()) {
      return invalidArgument("initialNodes[" + std::to_string(i) +
                             "]: expected both an id and an endpoint");
    }
  }
  return Status::ok();
}

Discovery::Discovery(DiscoveryConfig config, Clock& clock, DiscoveryTransport& transport,
                     NodeAddr self, uint64_t rngSeed, Post post)
    : config_(std::move(config)),
      clock_(clock),
      transport_(transport),
      self_(std::move(self)),
      rng_(rngSeed),
      post_(std::move(post)),
      alive_(std::make_shared<bool>(true)) {
  assert(config_.validate().isOk());
  for (const NodeAddr& n : config_.initialNodes) addCandidate(n, 0);
}

Discovery::~Discovery() { stop(); }

TimerId Discovery::schedule(int64_t delayMs, void (Discovery::*method)()) {
  std::weak_ptr<bool> weak = alive_;
  Post post = post_;
  return clock_.callAfter(Millis(delayMs), [weak, post, this, method] {
    auto run = [weak, this, method] {
      if (weak.lock()) (this->*method)();
    };
    if (post) {
      post(run);
    } else {
      run();
    }
  });
}

void Discovery::start() {
  if (started_) return;
  started_ = true;
  round();
  roundTimer_ = schedule(config_.pingPeriodMs, &Discovery::onRoundTimer);
}

void Discovery::stop() {
  started_ = false;
  if (roundTimer_) clock_.cancel(roundTimer_);
  if (timeoutTimer_) clock_.cancel(timeoutTimer_);
  roundTimer_ = timeoutTimer_ = 0;
}

void Discovery::onRoundTimer() {
  roundTimer_ = 0;
  if (!started_) return;
  round();
  roundTimer_ = schedule(config_.pingPeriodMs, &Discovery::onRoundTimer);
}

void Discovery::onTimeoutTimer() {
  timeoutTimer_ = 0;
  expirePending();
}

void Discovery::round() {
  ++roundNo_;
  ++stats_.rounds;
  probesThisRound_ = 0;
  expirePending();
  pruneBeyondThreshold();
  const uint64_t forget = static_cast<uint64_t>(config_.farRetryRounds);
  for (auto it = far_.begin(); it != far_.end();) {
    it = it->second.untilRound + forget <= roundNo_ ? far_.erase(it) : std::next(it);
  }
  // Copy first: a synchronous transport may deliver a pong (and change known_) inside send.
  std::vector<NodeAddr> targets;
  targets.reserve(known_.size());
  for (const auto& [id, e] : known_) targets.push_back(e.node.addr);
  for (const NodeAddr& to : targets) sendPingTo(to, false);
  // Part of the probe budget goes to the candidates already queued; the rest is kept for the
  // candidates that this round's pongs reveal (probed as they arrive, see onPong).
  probeCandidates(std::max<size_t>(1, config_.maxProbesPerRound / 4));
  if (timeoutTimer_) clock_.cancel(timeoutTimer_);
  timeoutTimer_ = schedule(config_.pingTimeoutMs, &Discovery::onTimeoutTimer);
}

void Discovery::sendPingTo(const NodeAddr& to, bool probe) {
  uint64_t nonce;
  do {
    nonce = rng_();
  } while (pending_.count(nonce) != 0);
  pending_.emplace(nonce, Pending{to, clock_.steadyNow()});
  ++stats_.pingsSent;
  if (probe) {
    ++stats_.probesSent;
    probing_.insert(to.id);
  }
  transport_.sendPing(to, nonce);
}

void Discovery::expirePending() {
  const SteadyPoint now = clock_.steadyNow();
  const int64_t timeoutUs = config_.pingTimeoutMs * 1000;
  std::vector<PeerId> missed;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (microsBetween(it->second.sentAt, now) < timeoutUs) {
      ++it;
      continue;
    }
    ++stats_.timeouts;
    probing_.erase(it->second.to.id);
    missed.push_back(it->second.to.id);
    it = pending_.erase(it);
  }
  for (const PeerId& id : missed) {
    auto k = known_.find(id);
    if (k == known_.end()) {
      if (candidates_.count(id) == 0) rememberFar(id, -1);  // a probe that got no answer
      continue;
    }
    if (++k->second.node.misses >= config_.lostAfterMisses) drop(id, /*pruned=*/false);
  }
}

bool Discovery::worthProbing(const PeerId& id) const {
  if (id.empty() || id == self_.id || known_.count(id) != 0 || probing_.count(id) != 0) {
    return false;
  }
  auto f = far_.find(id);
  return f == far_.end() || f->second.untilRound <= roundNo_;
}

void Discovery::addCandidate(const NodeAddr& addr, int64_t hintMicros) {
  if (addr.endpoint.empty() || !worthProbing(addr.id)) return;
  auto it = candidates_.find(addr.id);
  if (it != candidates_.end()) {
    // Each mention by another close node makes it likelier to be close to us too.
    CandidateKey& key = it->second.second;
    candidateOrder_.erase(key);
    key.negMentions -= 1;
    key.hintMicros = std::min(key.hintMicros, hintMicros);
    candidateOrder_.insert(key);
    return;
  }
  if (candidates_.size() >= config_.maxCandidates) {
    // Full: the new node replaces the least promising candidate, if it is more promising.
    auto worst = std::prev(candidateOrder_.end());
    if (CandidateKey{-1, hintMicros, nextOrder_, addr.id} > *worst) return;
    candidates_.erase(worst->id);
    candidateOrder_.erase(worst);
  }
  CandidateKey key{-1, hintMicros, nextOrder_++, addr.id};
  candidateOrder_.insert(key);
  candidates_.emplace(addr.id, std::pair{addr, std::move(key)});
  ++stats_.candidatesAdded;
}

void Discovery::probeCandidates(size_t budget) {
  while (budget > 0 && probesThisRound_ < config_.maxProbesPerRound && !candidateOrder_.empty()) {
    auto first = candidateOrder_.begin();
    auto it = candidates_.find(first->id);
    NodeAddr to = std::move(it->second.first);
    candidates_.erase(it);
    candidateOrder_.erase(first);
    if (!worthProbing(to.id)) continue;
    --budget;
    ++probesThisRound_;
    sendPingTo(to, true);
  }
}

void Discovery::onPing(const NodeAddr& from, uint64_t nonce) {
  ++stats_.pingsReceived;
  if (from.id == self_.id || from.id.empty()) return;
  transport_.sendPong(from, nonce, gossipSample(from.id));
  ++stats_.pongsSent;
  auto k = known_.find(from.id);
  if (k != known_.end()) {
    if (k->second.node.addr.endpoint != from.endpoint) {
      k->second.node.addr.endpoint = from.endpoint;
      gossipDirty_ = true;
    }
    return;
  }
  // A node that pings us has been told about us, so it is probably near: probe it now, within
  // the round's budget (which also bounds what a flood of pings can make us send). It is kept
  // only if it answers.
  addCandidate(from, 0);
  probeCandidates(config_.maxProbesPerRound);
}

void Discovery::onPong(const NodeAddr& from, uint64_t nonce, std::vector<NodeAddr> gossip) {
  auto p = pending_.find(nonce);
  const SteadyPoint now = clock_.steadyNow();
  if (p == pending_.end() || p->second.to.id != from.id ||
      microsBetween(p->second.sentAt, now) > config_.pingTimeoutMs * 1000) {
    ++stats_.unsolicitedPongs;
    return;
  }
  const int64_t rtt = std::max<int64_t>(0, microsBetween(p->second.sentAt, now));
  pending_.erase(p);
  probing_.erase(from.id);
  ++stats_.pongsReceived;

  const int64_t th = threshold();
  auto k = known_.find(from.id);
  int64_t best = rtt;  // for a node not kept: the minimum over its recent probes
  if (auto f = far_.find(from.id); f != far_.end() && f->second.rttMicros >= 0) {
    best = std::min(best, f->second.rttMicros);
  }
  if (k != known_.end()) {
    Entry& e = k->second;
    e.samples[e.sampleCount++ % e.samples.size()] = rtt;
    const size_t n = std::min(e.sampleCount, e.samples.size());
    setRtt(e, *std::min_element(e.samples.begin(), e.samples.begin() + n));
    e.node.misses = 0;
    e.node.lastSeen = clock_.now();
    if (e.node.addr.endpoint != from.endpoint) {
      e.node.addr.endpoint = from.endpoint;
      gossipDirty_ = true;
    }
  } else {
    // A pinger may still be queued as a candidate; a probe already left the queue.
    if (auto c = candidates_.find(from.id); c != candidates_.end()) {
      candidateOrder_.erase(c->second.second);
      candidates_.erase(c);
    }
    if (best <= th) {
      keep(from, best);
    } else if (noneWithin(th)) {
      // Nothing in range: keep the closest node seen, so the search can walk towards us.
      int64_t closest = std::numeric_limits<int64_t>::max();
      for (const auto& [id, e] : known_) closest = std::min(closest, e.node.rttMicros);
      if (best < closest) {
        keep(from, best);
      } else {
        rememberFar(from.id, rtt);
        noteRing(from, rtt);
      }
    } else {
      rememberFar(from.id, rtt);
      noteRing(from, rtt);
    }
  }

  // Merge the gossip of a node in range (or of the closest, when nothing is in range). While
  // no node at all is within maxPing, merge every answer's: a node that only knows far nodes
  // (two isolated nodes can keep each other as their closest, each the other's only gossip)
  // must keep searching through them; the probe budget still bounds what it sends.
  auto kept = known_.find(from.id);
  const bool hungry = inRange_ == 0;
  int64_t hint = rtt;
  if (kept != known_.end()) {
    hint = kept->second.node.rttMicros;
    if (hint > th && !noneWithin(th) && !hungry) return;
  } else if (!hungry) {
    return;
  }
  const size_t n = std::min(gossip.size(), config_.maxGossipNodes);
  stats_.gossipEntriesReceived += n;
  for (size_t i = 0; i < n; ++i) {
    addCandidate(gossip[i], hint);
  }
  // Chase: probe what this pong revealed now, within the round's budget, rather than a round
  // later. One hop costs one RTT inside the neighbourhood, so a round spans many hops.
  probeCandidates(config_.maxProbesPerRound);
}

void Discovery::keep(const NodeAddr& addr, int64_t rttMicros) {
  if (known_.size() >= config_.maxKnown) {
    auto farthest =
        std::max_element(known_.begin(), known_.end(), [](const auto& a, const auto& b) {
          return a.second.node.rttMicros < b.second.node.rttMicros;
        });
    if (farthest->second.node.rttMicros <= rttMicros) {
      rememberFar(addr.id, rttMicros);
      return;
    }
    drop(farthest->first, /*pruned=*/true);
  }
  Entry e;
  e.node.addr = addr;
  e.node.rttMicros = rttMicros;
  e.node.lastSeen = clock_.now();
  e.samples[0] = rttMicros;
  e.sampleCount = 1;
  known_.emplace(addr.id, std::move(e));
  inRange_ += rttMicros <= config_.maxPingMs * 1000 ? 1 : 0;
  gossipDirty_ = true;
  far_.erase(addr.id);
  ++stats_.discovered;
  for (DiscoveryListener* l : std::vector(listeners_)) l->onDiscovered(addr, rttMicros);
}

void Discovery::drop(const PeerId& id, bool pruned) {
  auto k = known_.find(id);
  if (k == known_.end()) return;
  const int64_t rtt = pruned ? k->second.node.rttMicros : -1;
  PeerId copy = id;  // `id` may refer into the erased entry
  if (pruned) noteRing(k->second.node.addr, rtt);
  inRange_ -= k->second.node.rttMicros <= config_.maxPingMs * 1000 ? 1 : 0;
  known_.erase(k);
  gossipDirty_ = true;
  rememberFar(copy, rtt);
  ++(pruned ? stats_.pruned : stats_.lost);
  for (DiscoveryListener* l : std::vector(listeners_)) l->onLost(copy);
}

void Discovery::pruneBeyondThreshold() {
  const int64_t th = threshold();
  std::vector<PeerId> beyond;
  const Entry* closest = nullptr;
  size_t within = 0;
  for (const auto& [id, e] : known_) {
    if (e.node.rttMicros <= th) {
      ++within;
    } else {
      beyond.push_back(id);
    }
    if (!closest || e.node.rttMicros < closest->node.rttMicros) closest = &e;
  }
  PeerId keepId = (within == 0 && closest) ? closest->node.addr.id : PeerId();
  for (const PeerId& id : beyond) {
    if (id != keepId) drop(id, /*pruned=*/true);
  }
}

void Discovery::rememberFar(const PeerId& id, int64_t rttMicros) {
  if (far_.size() >= config_.farMemory && far_.count(id) == 0) far_.erase(far_.begin());
  Far& f = far_.try_emplace(id, Far{-1, 0, 0}).first->second;
  if (rttMicros >= 0) f.rttMicros = f.rttMicros < 0 ? rttMicros : std::min(f.rttMicros, rttMicros);
  ++f.tries;
  // A node that did not answer, or that was just beyond the threshold, gets a few more tries
  // in the next rounds: a ping can be lost, and queueing only ever adds delay, so the minimum
  // of a few samples is the better estimate (as for known nodes). Others wait longer.
  const bool borderline = rttMicros < 0 || rttMicros <= threshold() + threshold() / 4;
  // Others wait farRetryRounds on average, spread over [1/2, 3/2] of it so that the nodes
  // learned together (at start) are not all re-probed in the same round.
  int64_t wait = 1;
  if (!borderline || f.tries >= kFarTries) {
    const int64_t r = config_.farRetryRounds;
    wait = std::uniform_int_distribution<int64_t>(std::max<int64_t>(1, r / 2), r + r / 2)(rng_);
  }
  f.untilRound = roundNo_ + static_cast<uint64_t>(wait);
}

bool Discovery::noneWithin(int64_t micros) const {
  if (inRange_ > 0 && micros >= config_.maxPingMs * 1000) return false;
  for (const auto& [id, e] : known_) {
    if (e.node.rttMicros <= micros) return false;
  }
  return true;
}

void Discovery::setRtt(Entry& e, int64_t rttMicros) {
  const int64_t maxPingUs = config_.maxPingMs * 1000;
  if (e.node.rttMicros == rttMicros) return;
  inRange_ -= e.node.rttMicros <= maxPingUs ? 1 : 0;
  e.node.rttMicros = rttMicros;
  gossipDirty_ = true;
  inRange_ += rttMicros <= maxPingUs ? 1 : 0;
}

int64_t Discovery::threshold() const {
  const int64_t maxPingUs = config_.maxPingMs * 1000;
  const size_t inRange = inRange_;
  if (inRange >= config_.minKnown) return maxPingUs;
  const double widen = std::sqrt(static_cast<double>(config_.minKnown) /
                                 static_cast<double>(std::max<size_t>(1, inRange)));
  return static_cast<int64_t>(std::llround(static_cast<double>(maxPingUs) * widen));
}

void Discovery::noteRing(const NodeAddr& addr, int64_t rttMicros) {
  if (rttMicros < 0 || rttMicros > 2 * threshold()) return;
  if (ring_.size() < kRingSize) {
    ring_.push_back(addr);
  } else {
    ring_[ringNext_++ % kRingSize] = addr;
  }
}

std::vector<NodeAddr> Discovery::gossipSample(const PeerId& exclude) {
  std::vector<NodeAddr> out = knownSample(exclude);
  // Up to kRingSlots nodes of the ring just beyond our threshold (measured, not kept). Gossip
  // of known nodes alone is closed: two groups of nodes that grew apart (from different
  // initial nodes) would never learn of each other even where they overlap. The ring bridges
  // them: our neighbours learn of nodes that may be in their range though not in ours.
  size_t added = 0;
  for (size_t tries = 0; tries < 2 * kRingSlots && added < kRingSlots && !ring_.empty(); ++tries) {
    const NodeAddr& a = ring_[std::uniform_int_distribution<size_t>(0, ring_.size() - 1)(rng_)];
    if (a.id == exclude || known_.count(a.id) != 0) continue;
    if (std::any_of(out.begin(), out.end(), [&](const NodeAddr& o) { return o.id == a.id; })) {
      continue;
    }
    out.push_back(a);
    ++added;
  }
  return out;
}

std::vector<NodeAddr> Discovery::knownSample(const PeerId& exclude) {
  const size_t limit = config_.maxGossipNodes > kRingSlots && !ring_.empty()
                           ? config_.maxGossipNodes - kRingSlots
                           : config_.maxGossipNodes;
  if (gossipDirty_) {
    gossipCache_.clear();
    gossipCache_.reserve(known_.size());
    for (const auto& [id, e] : known_) gossipCache_.push_back(e.node.addr);
    gossipDirty_ = false;
  }
  std::vector<NodeAddr> out;
  if (gossipCache_.size() <= limit + 1) {
    out.reserve(gossipCache_.size());
    for (const NodeAddr& a : gossipCache_) {
      if (a.id != exclude && out.size() < limit) out.push_back(a);
    }
    return out;
  }
  // A uniform sample: partial Fisher-Yates over the cache (its order does not matter).
  out.reserve(limit);
  for (size_t i = 0; i < gossipCache_.size() && out.size() < limit; ++i) {
    std::uniform_int_distribution<size_t> pick(i, gossipCache_.size() - 1);
    std::swap(gossipCache_[i], gossipCache_[pick(rng_)]);
    if (gossipCache_[i].id != exclude) out.push_back(gossipCache_[i]);
  }
  return out;
}

std::vector<KnownNode> Discovery::known() const {
  std::vector<KnownNode> out;
  out.reserve(known_.size());
  for (const auto& [id, e] : known_) out.push_back(e.node);
  std::sort(out.begin(), out.end(), [](const KnownNode& a, const KnownNode& b) {
    return a.rttMicros != b.rttMicros ? a.rttMicros < b.rttMicros : a.addr.id < b.addr.id;
  });
  return out;
}

Discovery::PeerState Discovery::stateOf(const PeerId& id) const {
  if (known_.count(id)) return PeerState::kKnown;
  if (probing_.count(id)) return PeerState::kProbing;
  if (candidates_.count(id)) return PeerState::kCandidate;
  if (far_.count(id)) return PeerState::kFar;
  return PeerState::kUnknown;
}

DiscoveryStats Discovery::stats() const {
  DiscoveryStats s = stats_;
  s.candidates = candidates_.size();
  return s;
}

void Discovery::addListener(DiscoveryListener* l) {
  if (std::find(listeners_.begin(), listeners_.end(), l) == listeners_.end()) {
    listeners_.push_back(l);
  }
}

void Discovery::removeListener(DiscoveryListener* l) {
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), l), listeners_.end());
}

}  // namespace mercato::p2p
