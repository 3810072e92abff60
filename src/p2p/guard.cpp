#include "p2p/guard.hpp"

#include <algorithm>

namespace mercato::p2p {

bool ReplayGuard::accept(const crypto::PublicKey& sender, uint64_t seq, int64_t timeMs,
                         int64_t nowMs) {
  if (timeMs < nowMs - maxSkewMs_ || timeMs > nowMs + maxSkewMs_) return false;
  std::string key(reinterpret_cast<const char*>(sender.bytes.data()), sender.bytes.size());
  auto it = map_.find(key);
  if (it == map_.end()) {
    if (map_.size() >= maxSenders_ && !lru_.empty()) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    map_.emplace(key, Window{seq, 1, lru_.begin()});
    return true;
  }
  Window& w = it->second;
  lru_.splice(lru_.begin(), lru_, w.lru);
  if (seq > w.highest) {
    const uint64_t shift = seq - w.highest;
    w.seen = shift >= 64 ? 0 : w.seen << shift;
    w.seen |= 1;
    w.highest = seq;
    return true;
  }
  const uint64_t back = w.highest - seq;
  if (back >= 64) return false;
  const uint64_t bit = uint64_t{1} << back;
  if (w.seen & bit) return false;
  w.seen |= bit;
  return true;
}

bool RateLimiter::allow(const std::string& source, int64_t nowMicros) {
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= maxSources_) {
      // Forget every bucket that would be full by now: those sources are idle.
      std::erase_if(buckets_, [&](const auto& kv) {
        return kv.second.tokens + (nowMicros - kv.second.lastMicros) * rate_ / 1e6 >= burst_;
      });
      if (buckets_.size() >= maxSources_) return false;
    }
    it = buckets_.emplace(source, Bucket{burst_, nowMicros}).first;
  }
  Bucket& b = it->second;
  const int64_t elapsed = std::max<int64_t>(0, nowMicros - b.lastMicros);
  b.tokens = std::min(burst_, b.tokens + elapsed * rate_ / 1e6);
  b.lastMicros = nowMicros;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace mercato::p2p
