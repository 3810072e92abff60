#include "ledger/embedded/tx_hash_index.hpp"

#include <algorithm>
#include <stdexcept>

#include "ledger/embedded/state_machine.hpp"

namespace mercato::ledger::embedded {

namespace {

// Bounds of a sweep, in new entries. tx_hashes holds ~200 entries per 4 KiB page, so a sweep of
// watermark/32 entries writes each of its ~watermark/200 pages for ~6 entries.
constexpr uint64_t kMinSweep = 8192;
constexpr uint64_t kMaxSweep = 262144;

uint64_t prefixOf(const std::string& hexHash) {
  auto p = txHashPrefix(hexHash);
  if (!p) throw std::runtime_error("txlog entry has a malformed hash '" + hexHash + "'");
  return *p;
}

}  // namespace

void TxHashIndex::open(SQLite::Database& db) {
  std::lock_guard lk(mu_);
  pending_.clear();
  staged_.clear();
  slice_ = {};
  {
    SQLite::Statement q(db, "SELECT value FROM meta WHERE key = 'hash_index_seq'");
    watermark_ = q.executeStep() ? std::stoull(q.getColumn(0).getString()) : 0;
  }
  newestSeq_ = watermark_;
  SQLite::Statement q(db, "SELECT seq, hash FROM txlog WHERE seq > ? ORDER BY seq");
  q.bind(1, static_cast<int64_t>(watermark_));
  while (q.executeStep()) {
    const auto seq = static_cast<uint64_t>(q.getColumn(0).getInt64());
    pending_.emplace(prefixOf(q.getColumn(1).getString()), seq);
    newestSeq_ = std::max(newestSeq_, seq);
  }
  sweepActive_ = !pending_.empty();
  sweepStart_ = newestSeq_;
  cursor_ = 0;
}

void TxHashIndex::stage(const std::vector<std::pair<uint64_t, uint64_t>>& prefixAndSeq) {
  std::lock_guard lk(mu_);
  for (const auto& [prefix, seq] : prefixAndSeq) {
    pending_.emplace(prefix, seq);
    staged_.emplace_back(prefix, seq);
  }
}

uint64_t TxHashIndex::sweepLength() const {
  return std::clamp<uint64_t>(watermark_ / 32, kMinSweep, kMaxSweep);
}

void TxHashIndex::writeSlice(SQLite::Database& db, size_t newEntries) {
  slice_ = {};
  if (!sweepActive_) return;
  // The slice's share of the hash space is this commit's share of a sweep, so the sweep ends
  // after about sweepLength() new entries whatever the batch sizes.
  const unsigned __int128 space = static_cast<unsigned __int128>(1) << 64;
  const unsigned __int128 width = space * std::max<uint64_t>(newEntries, 1) / sweepLength() + 1;
  const unsigned __int128 end = static_cast<unsigned __int128>(cursor_) + width;
  slice_.wraps = end >= space;
  slice_.end = slice_.wraps ? 0 : static_cast<uint64_t>(end);

  SQLite::Statement ins(db, "INSERT OR IGNORE INTO tx_hashes(prefix, seq) VALUES(?, ?)");
  {
    std::lock_guard lk(mu_);
    auto it = pending_.lower_bound(cursor_);
    auto stop = slice_.wraps ? pending_.end() : pending_.lower_bound(slice_.end);
    for (; it != stop; ++it) {
      ins.bind(1, static_cast<int64_t>(it->first));
      ins.bind(2, static_cast<int64_t>(it->second));
      ins.exec();
      ins.reset();
    }
  }
  if (slice_.wraps) {
    SQLite::Statement w(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('hash_index_seq', ?)");
    w.bind(1, std::to_string(sweepStart_));
    w.exec();
  }
  slice_.written = true;
}

void TxHashIndex::committed() {
  std::lock_guard lk(mu_);
  for (const auto& [prefix, seq] : staged_) newestSeq_ = std::max(newestSeq_, seq);
  staged_.clear();
  if (slice_.written) {
    auto it = pending_.lower_bound(cursor_);
    auto stop = slice_.wraps ? pending_.end() : pending_.lower_bound(slice_.end);
    pending_.erase(it, stop);
    if (slice_.wraps) {
      watermark_ = sweepStart_;
      sweepActive_ = false;
      cursor_ = 0;
    } else {
      cursor_ = slice_.end;
    }
  }
  slice_ = {};
  // A sweep starts from committed entries only: when it ends, everything committed before it
  // began has been written, which is what the watermark claims.
  if (!sweepActive_ && !pending_.empty()) {
    sweepActive_ = true;
    sweepStart_ = newestSeq_;
    cursor_ = 0;
  }
}

void TxHashIndex::aborted() {
  std::lock_guard lk(mu_);
  for (const auto& [prefix, seq] : staged_) {
    auto [b, e] = pending_.equal_range(prefix);
    for (auto it = b; it != e; ++it) {
      if (it->second == seq) {
        pending_.erase(it);
        break;
      }
    }
  }
  staged_.clear();
  slice_ = {};
}

std::vector<uint64_t> TxHashIndex::recent(uint64_t prefix) const {
  std::lock_guard lk(mu_);
  std::vector<uint64_t> out;
  auto [b, e] = pending_.equal_range(prefix);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

size_t TxHashIndex::pending() const {
  std::lock_guard lk(mu_);
  return pending_.size();
}

}  // namespace mercato::ledger::embedded
