// TxHashIndex: pending entries are found in memory, sweeps write them to tx_hashes slice by
// slice, the watermark moves only when a sweep has covered everything committed before it, a
// failed commit leaves no trace, and reopening reloads exactly the entries above the watermark.
#include "ledger/embedded/tx_hash_index.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "ledger/embedded/state_machine.hpp"

namespace mercato::ledger::embedded {
namespace {

class TxHashIndexTest : public ::testing::Test {
 protected:
  TxHashIndexTest() : db_(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE), sm_(db_) {}

  // Appends `n` log rows with random hashes (the index reads only seq and hash) and returns
  // their (prefix, seq).
  std::vector<std::pair<uint64_t, uint64_t>> appendLog(int n) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    SQLite::Statement ins(db_,
                          "INSERT INTO txlog(seq, hash, entry_hash, time, kind, sender, body) "
                          "VALUES(?, ?, '', 0, 'transfer', '', '{}')");
    for (int i = 0; i < n; ++i) {
      char hex[65];
      for (int k = 0; k < 64; ++k) hex[k] = "0123456789abcdef"[rng_() % 16];
      hex[64] = 0;
      const uint64_t seq = ++seq_;
      ins.bind(1, static_cast<int64_t>(seq));
      ins.bind(2, std::string(hex));
      ins.exec();
      ins.reset();
      out.emplace_back(txHashPrefix(hex).value(), seq);
      all_.emplace(out.back());
    }
    return out;
  }

  // One group commit of `n` new entries, as EmbeddedLedger::commitBatch does it.
  void commit(TxHashIndex& index, int n) {
    SQLite::Transaction t(db_);
    auto entries = appendLog(n);
    index.stage(entries);
    index.writeSlice(db_, entries.size());
    t.commit();
    index.committed();
  }

  std::set<std::pair<uint64_t, uint64_t>> table() {
    std::set<std::pair<uint64_t, uint64_t>> out;
    SQLite::Statement q(db_, "SELECT prefix, seq FROM tx_hashes");
    while (q.executeStep())
      out.emplace(static_cast<uint64_t>(q.getColumn(0).getInt64()),
                  static_cast<uint64_t>(q.getColumn(1).getInt64()));
    return out;
  }

  // Every entry is findable: in memory or in the table.
  void expectAllFindable(const TxHashIndex& index) {
    auto t = table();
    for (const auto& [prefix, seq] : all_) {
      auto r = index.recent(prefix);
      const bool inMemory = std::find(r.begin(), r.end(), seq) != r.end();
      EXPECT_TRUE(inMemory || t.count({prefix, seq})) << "seq " << seq << " is lost";
    }
  }

  SQLite::Database db_;
  StateMachine sm_;  // creates the schema
  std::mt19937_64 rng_{7};
  uint64_t seq_ = 0;
  std::set<std::pair<uint64_t, uint64_t>> all_;
};

TEST_F(TxHashIndexTest, SweepsWriteEverythingAndMoveTheWatermark) {
  TxHashIndex index;
  index.open(db_);
  EXPECT_EQ(index.watermark(), 0u);
  // The first sweep spans 8,192 entries (the minimum): after ~2 sweeps' worth of commits of
  // 64, the watermark has moved and the table holds everything up to it.
  for (int i = 0; i < 300; ++i) commit(index, 64);
  expectAllFindable(index);
  const uint64_t w = index.watermark();
  EXPECT_GT(w, 0u);
  auto t = table();
  for (const auto& [prefix, seq] : all_) {
    if (seq <= w) {
      EXPECT_TRUE(t.count({prefix, seq})) << "seq " << seq << " is below the watermark";
    }
  }
  // Memory holds about one sweep, not the whole log.
  EXPECT_LT(index.pending(), 3u * 8192u);
  SQLite::Statement m(db_, "SELECT value FROM meta WHERE key = 'hash_index_seq'");
  ASSERT_TRUE(m.executeStep());
  EXPECT_EQ(m.getColumn(0).getString(), std::to_string(w));
}

TEST_F(TxHashIndexTest, AFailedCommitLeavesNoTrace) {
  TxHashIndex index;
  index.open(db_);
  for (int i = 0; i < 50; ++i) commit(index, 64);
  const size_t pendingBefore = index.pending();
  const auto tableBefore = table();
  {
    SQLite::Transaction t(db_);
    std::vector<std::pair<uint64_t, uint64_t>> doomed = {{123, seq_ + 1}, {456, seq_ + 2}};
    index.stage(doomed);
    EXPECT_EQ(index.recent(123).size(), 1u);
    index.writeSlice(db_, doomed.size());
    // t goes out of scope: rolled back, as after a failed COMMIT.
  }
  index.aborted();
  EXPECT_TRUE(index.recent(123).empty());
  EXPECT_EQ(index.pending(), pendingBefore);
  EXPECT_EQ(table(), tableBefore);
  for (int i = 0; i < 300; ++i) commit(index, 64);
  expectAllFindable(index);
}

TEST_F(TxHashIndexTest, ReopenReloadsEntriesAboveTheWatermark) {
  {
    TxHashIndex index;
    index.open(db_);
    for (int i = 0; i < 200; ++i) commit(index, 50);
  }  // "crash": whatever was only in memory is gone
  TxHashIndex reopened;
  reopened.open(db_);
  expectAllFindable(reopened);
  for (int i = 0; i < 400; ++i) commit(reopened, 50);
  expectAllFindable(reopened);
  EXPECT_GT(reopened.watermark(), 10'000u);
}

}  // namespace
}  // namespace mercato::ledger::embedded
