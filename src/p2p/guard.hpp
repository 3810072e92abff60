// The transport's stateful defences: a per-sender replay window and a per-source token bucket.
//
// ReplayGuard: every sender numbers its messages with one u64 sequence across all networks
// (starting from its start-up time in microseconds, so a restart keeps counting upwards). A
// message is accepted once: its seq must be above the highest seen from that sender, or inside
// the 64 below it and not seen yet; its timestamp must be within `maxSkewMs` of now, which also
// bounds what a receiver that forgot a sender (restart, eviction) can be fooled by. Up to
// `maxSenders` senders are remembered (least recently heard is evicted).
//
// RateLimiter: a token bucket per source address ("ip:port"), refilled at `ratePerSec` up to
// `burst`. It sits in front of decryption and signature checks, since a sender is not known
// to be who it claims until those pass. Up to `maxSources` buckets are kept; when full, the
// fullest (idle) buckets are forgotten.
//
// Thread-safety: not thread-safe; owned by the transport's I/O thread.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "crypto/keys.hpp"

namespace mercato::p2p {

class ReplayGuard {
 public:
  explicit ReplayGuard(size_t maxSenders = 4096, int64_t maxSkewMs = 60'000)
      : maxSenders_(maxSenders), maxSkewMs_(maxSkewMs) {}
  // True (and remembered) when the message is fresh; false for a replay or a stale timestamp.
  bool accept(const crypto::PublicKey& sender, uint64_t seq, int64_t timeMs, int64_t nowMs);
  size_t senders() const { return map_.size(); }

 private:
  struct Window {
    uint64_t highest = 0;
    uint64_t seen = 0;  // bit i: highest - i was seen
    std::list<std::string>::iterator lru;
  };
  size_t maxSenders_;
  int64_t maxSkewMs_;
  std::unordered_map<std::string, Window> map_;
  std::list<std::string> lru_;  // most recent first
};

class RateLimiter {
 public:
  RateLimiter(double ratePerSec, double burst, size_t maxSources = 16384)
      : rate_(ratePerSec), burst_(burst), maxSources_(maxSources) {}
  // Takes one token from `source`'s bucket; false when it is empty. `nowMicros` is monotonic.
  bool allow(const std::string& source, int64_t nowMicros);
  size_t sources() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens;
    int64_t lastMicros;
  };
  double rate_, burst_;
  size_t maxSources_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace mercato::p2p
