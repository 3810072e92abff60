// TxHashIndex: the embedded ledger's transaction hash -> log seq index (table tx_hashes), kept
// so that a group commit does not dirty one random B-tree page per transaction.
//
// A hash is random, so inserting each new transaction's hash into a B-tree touches a different
// page every time: a group commit of 64 transfers wrote ~64 index pages to the WAL, fsync'd
// them and later checkpointed them. Instead, the index is derived data, rebuilt from the log:
//  - entries the index does not hold yet live in memory (prefix -> seq), and are also in txlog,
//    which is durable; open() reloads them from txlog rows above the persisted watermark;
//  - each group commit writes one slice of the hash space (the pending entries whose prefix
//    falls in it, in key order), sweeping the whole space once every `sweepLength` new
//    entries. A sweep touches each index page about once for many entries, so the index costs
//    a fraction of a page per transaction instead of one;
//  - when a sweep ends, every entry that was pending when it began is in the table, so the
//    watermark (meta 'hash_index_seq') moves to the newest seq of that moment, in the same
//    SQLite transaction.
// Lookups check memory first and then the table; see lookup order in find().
//
// Thread-safety: open(), stage(), writeSlice(), committed() and aborted() are for the committer
// thread (the owner of the write connection). recent() may be called from any thread.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace mercato::ledger::embedded {

class TxHashIndex {
 public:
  // Loads the watermark and the log entries above it. Throws SQLite::Exception.
  void open(SQLite::Database& db);

  // Adds the entries of the group commit about to be committed (they are readable through
  // recent() at once; a reader then finds no txlog row until the COMMIT, as for any
  // uncommitted entry).
  void stage(const std::vector<std::pair<uint64_t, uint64_t>>& prefixAndSeq);

  // Inside the group commit's transaction, after its entries were applied: writes the next
  // slice of pending entries (and the watermark when the sweep completes). `newEntries` is how
  // many entries this commit added; the sweep advances in proportion. Throws SQLite::Exception.
  void writeSlice(SQLite::Database& db, size_t newEntries);
  // The COMMIT succeeded: forget the written slice, move the cursor.
  void committed();
  // The COMMIT failed and was rolled back: drop the staged entries, keep the slice pending.
  void aborted();

  // The seqs of pending entries whose hash starts with `prefix` (normally zero or one).
  std::vector<uint64_t> recent(uint64_t prefix) const;

  // Pending entries (for tests and metrics).
  size_t pending() const;
  uint64_t watermark() const { return watermark_; }

 private:
  // How many new entries one sweep of the hash space spans: large against the table's page
  // count so each page is written for several entries; bounded so memory stays small.
  uint64_t sweepLength() const;

  mutable std::mutex mu_;                      // guards pending_ (readers call recent())
  std::multimap<uint64_t, uint64_t> pending_;  // prefix -> seq, not yet known to be in the table

  uint64_t watermark_ = 0;   // every entry with seq <= watermark_ is in tx_hashes
  uint64_t newestSeq_ = 0;   // newest seq staged or loaded
  uint64_t sweepStart_ = 0;  // newestSeq_ when the current sweep began
  uint64_t cursor_ = 0;      // the sweep has written every prefix below this
  bool sweepActive_ = false;

  // The slice written in the open transaction.
  struct Slice {
    uint64_t end = 0;    // exclusive, unless `wraps`
    bool wraps = false;  // the slice reaches the end of the hash space: the sweep completes
    bool written = false;
  } slice_;
  std::vector<std::pair<uint64_t, uint64_t>> staged_;
};

}  // namespace mercato::ledger::embedded
