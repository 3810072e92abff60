#include "ledger/embedded/embedded_ledger.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <list>
#include <mutex>
#include <thread>

#include "ledger/embedded/market_rules.hpp"
#include "ledger/embedded/sql_filter.hpp"
#include "ledger/embedded/state_machine.hpp"
#include "ledger/embedded/tx_hash_index.hpp"

namespace mercato::ledger::embedded {

using nlohmann::json;

std::string ledgerDbPath(const std::string& dataDir) {
  return (std::filesystem::path(dataDir) / "ledger.db").string();
}

namespace {

void configure(SQLite::Database& db, bool syncFull) {
  db.exec("PRAGMA journal_mode=WAL");
  db.exec(syncFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  // 8 MiB. A bigger cache made every COMMIT slower: SQLite 3.40 ends each write transaction by
  // truncating the page cache (pcache1TruncateUnsafe), which walked the whole hash table of a
  // 64 MiB cache, ~13% of the committer's time under load (bench/RESULTS.md, 2026-11-23).
  // Pages that fall out are re-read from the OS page cache.
  db.exec("PRAGMA cache_size=-8192");
  db.exec("PRAGMA temp_store=MEMORY");
  // After a completed checkpoint the writer rewinds the WAL; this trims a file that grew past
  // the limit while a checkpoint was catching up.
  db.exec("PRAGMA journal_size_limit=67108864");
  db.setBusyTimeout(5000);
}

TxRecord recordFromRow(SQLite::Statement& q) {
  TxRecord r;
  r.seq = static_cast<uint64_t>(q.getColumn(0).getInt64());
  r.hash = q.getColumn(1).getString();
  r.entryHash = q.getColumn(2).getString();
  r.time = q.getColumn(3).getInt64();
  r.kind = q.getColumn(4).getString();
  r.sender = q.getColumn(5).getString();
  r.body = json::parse(q.getColumn(6).getString());
  return r;
}

constexpr const char* kTxColumns = "seq, hash, entry_hash, time, kind, sender, body";

}  // namespace

class EmbeddedLedger final : public Ledger {
 public:
  EmbeddedLedger(const LedgerConfig& config, std::unique_ptr<SQLite::Database> writeDb)
      : config_(config), clock_(*config.clock), writeDb_(std::move(writeDb)), sm_(*writeDb_) {
    if (config.metrics) {
      auto* m = config.metrics;
      mAccepted_ = m->counter("mercato_ledger_tx_accepted_total", "Transactions applied");
      mRejected_ = m->counter("mercato_ledger_tx_rejected_total", "Transactions rejected");
      mBatches_ = m->counter("mercato_ledger_commit_batches_total", "Group commits");
      mCommit_ = m->histogram("mercato_ledger_commit_seconds", "Group commit latency");
      mHead_ = m->gauge("mercato_ledger_head_seq", "Sequence number of the last log entry");
    }
  }

  ~EmbeddedLedger() override {
    {
      std::lock_guard wl(waitMu_);
      closing_ = true;
    }
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (committer_.joinable()) committer_.join();
    {
      std::lock_guard lk(ckMu_);
      ckStop_ = true;
    }
    ckCv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
    clock_.cancel(tickTimer_);
    // Answer whatever is still queued: nothing of it was applied.
    for (auto& item : queue_) item.done(unavailable("ledger is shutting down"));
    std::list<Waiter> waiters;
    {
      std::lock_guard lk(waitMu_);
      waiters.swap(waiters_);
    }
    for (auto& w : waiters) {
      clock_.cancel(w.timer);
      w.ready();
    }
  }

  Status init() {
    try {
      if (!sm_.initialized()) {
        GenesisParams g;
        g.chainId = config_.chainId;
        g.devMode = config_.devMode;
        g.closeGraceMs = config_.closeGraceMs;
        g.mintCap = config_.devMode ? config_.mintCap : 0;
        g.bidDeposit = config_.bidDeposit;
        g.maxOrderTtlMs = config_.maxOrderTtlMs;
        writeDb_->exec("BEGIN IMMEDIATE");
        auto r = sm_.applyGenesis(g, clock_.nowMillis());
        if (!r.isOk()) {
          writeDb_->exec("ROLLBACK");
          return r.status();
        }
        writeDb_->exec("COMMIT");
        spdlog::info("ledger: created chain {} (dev mode {})", g.chainId, g.devMode);
      }
      ASSIGN_OR_RETURN(params_, sm_.loadGenesis());
      if (params_.chainId != config_.chainId)
        return failedPrecondition("ledger database in " + config_.dataDir + " holds chain '" +
                                  params_.chainId + "', not the configured '" + config_.chainId +
                                  "'");
      {
        SQLite::Statement q(*writeDb_, "SELECT COALESCE(MAX(time), 0) FROM txlog");
        q.executeStep();
        lastTime_ = q.getColumn(0).getInt64();
      }
      eventHead_ = sm_.eventSeq();
      hashIndex_.open(*writeDb_);  // loads every entry above its watermark, genesis included
      sm_.trackLogged();
      if (mHead_) mHead_->set(static_cast<int64_t>(sm_.headSeq()));
    } catch (const std::exception& e) {
      return internalError(std::string("opening ledger: ") + e.what());
    }
    // Checkpoints run on their own connection and thread (PASSIVE: they never block the
    // committer). The write connection only reports the WAL size after each commit.
    sqlite3_wal_hook(writeDb_->getHandle(), &EmbeddedLedger::walHook, this);
    checkpointer_ = std::thread([this] { checkpointLoop(); });
    committer_ = std::thread([this] { commitLoop(); });
    scheduleTick();
    return Status::ok();
  }

  void submit(SignedTx tx, SubmitCallback done) override {
    if (tx.tx.chainId != params_.chainId) {
      if (mRejected_) mRejected_->inc();
      return done(invalidArgument("tx.chain '" + tx.tx.chainId + "': this ledger is '" +
                                  params_.chainId + "'"));
    }
    if (Status s = verifySignature(tx); !s.isOk()) {
      if (mRejected_) mRejected_->inc();
      return done(s);
    }
    {
      std::lock_guard lk(mu_);
      if (stop_) return done(unavailable("ledger is shutting down"));
      queue_.push_back(Item{std::move(tx), std::move(done)});
    }
    cv_.notify_one();
  }

  Result<LedgerInfo> info() override {
    return withReader<LedgerInfo>([&](SQLite::Database& db) -> Result<LedgerInfo> {
      SQLite::Transaction snapshot(db);  // one consistent read snapshot for every field
      StateMachine view(db, false);
      LedgerInfo i;
      i.chainId = params_.chainId;
      i.backend = "embedded";
      i.devMode = params_.devMode;
      i.closeGraceMs = params_.closeGraceMs;
      i.bidDeposit = params_.effectiveBidDeposit();
      i.maxOrderTtlMs = params_.effectiveMaxOrderTtlMs();
      i.headSeq = view.headSeq();
      i.headHash = view.headHash();
      i.eventSeq = view.eventSeq();
      i.totalSupply = view.totalSupply();
      i.stateRoot = view.stateRoot();
      return i;
    });
  }

  Result<Account> account(const std::string& address) override {
    return withReader<Account>([&](SQLite::Database& db) -> Result<Account> {
      SQLite::Statement q(db, "SELECT balance, nonce FROM accounts WHERE address = ?");
      q.bind(1, address);
      if (!q.executeStep())
        return notFound("account " + address + " is unknown: it has never received funds");
      return Account{address, q.getColumn(0).getInt64(),
                     static_cast<uint64_t>(q.getColumn(1).getInt64())};
    });
  }

  Result<ProviderRecord> provider(const std::string& owner) override {
    return withReader<ProviderRecord>([&](SQLite::Database& db) -> Result<ProviderRecord> {
      SQLite::Statement q(db, "SELECT record FROM providers WHERE owner = ?");
      q.bind(1, owner);
      if (!q.executeStep()) return notFound("provider " + owner + " is not registered");
      return providerFromJson(json::parse(q.getColumn(0).getString()));
    });
  }

  Result<std::vector<ProviderRecord>> providers(bool includeInactive) override {
    using V = std::vector<ProviderRecord>;
    return withReader<V>([&](SQLite::Database& db) -> Result<V> {
      SQLite::Statement q(db, includeInactive
                                  ? "SELECT record FROM providers ORDER BY owner"
                                  : "SELECT record FROM providers WHERE active = 1 ORDER BY owner");
      V out;
      while (q.executeStep()) {
        ASSIGN_OR_RETURN(auto p, providerFromJson(json::parse(q.getColumn(0).getString())));
        out.push_back(std::move(p));
      }
      return out;
    });
  }

  Result<Escrow> escrow(const std::string& id) override {
    return withReader<Escrow>([&](SQLite::Database& db) -> Result<Escrow> {
      SQLite::Statement q(db, "SELECT record FROM escrows WHERE id = ?");
      q.bind(1, id);
      if (!q.executeStep()) return notFound("escrow " + id + " does not exist");
      return escrowFromJson(json::parse(q.getColumn(0).getString()));
    });
  }

  Result<std::vector<Escrow>> escrows(const EscrowFilter& f) override {
    using V = std::vector<Escrow>;
    return withReader<V>([&](SQLite::Database& db) -> Result<V> {
      SqlFilter w;
      w.eq("publisher", f.publisher).eq("provider", f.provider);
      w.eq("state", f.state ? escrowStateName(*f.state) : "");
      SQLite::Statement q(db, w.sql("record", "escrows", "ORDER BY id"));
      w.bind(q);
      V out;
      while (q.executeStep()) {
        ASSIGN_OR_RETURN(auto e, escrowFromJson(json::parse(q.getColumn(0).getString())));
        out.push_back(std::move(e));
      }
      return out;
    });
  }

  Result<Order> order(const std::string& id) override {
    return withReader<Order>([&](SQLite::Database& db) { return MarketRules::order(db, id); });
  }
  Result<std::vector<Order>> orders(const OrderFilter& f) override {
    return withReader<std::vector<Order>>(
        [&](SQLite::Database& db) { return MarketRules::orders(db, f); });
  }
  Result<Bid> bid(const std::string& id) override {
    return withReader<Bid>([&](SQLite::Database& db) { return MarketRules::bid(db, id); });
  }
  Result<std::vector<Bid>> bids(const BidFilter& f) override {
    return withReader<std::vector<Bid>>(
        [&](SQLite::Database& db) { return MarketRules::bids(db, f); });
  }
  Result<Lease> lease(const std::string& id) override {
    return withReader<Lease>([&](SQLite::Database& db) { return MarketRules::lease(db, id); });
  }
  Result<std::vector<Lease>> leases(const LeaseFilter& f) override {
    return withReader<std::vector<Lease>>(
        [&](SQLite::Database& db) { return MarketRules::leases(db, f); });
  }
  Result<std::vector<Attestation>> attestations(const std::string& provider) override {
    return withReader<std::vector<Attestation>>(
        [&](SQLite::Database& db) { return MarketRules::attestations(db, provider); });
  }

  Result<std::vector<TxRecord>> transactions(uint64_t after, size_t limit,
                                             const std::string& address) override {
    using V = std::vector<TxRecord>;
    return withReader<V>([&](SQLite::Database& db) -> Result<V> {
      V out;
      if (address.empty()) {
        SQLite::Statement q(db, std::string("SELECT ") + kTxColumns +
                                    " FROM txlog WHERE seq > ? ORDER BY seq LIMIT ?");
        q.bind(1, static_cast<int64_t>(after));
        q.bind(2, static_cast<int64_t>(limit));
        while (q.executeStep()) out.push_back(recordFromRow(q));
        return out;
      }
      SQLite::Transaction snapshot(db);  // the account's history and the log, as of one moment
      StateMachine view(db, false);
      SQLite::Statement q(db, std::string("SELECT ") + kTxColumns + " FROM txlog WHERE seq = ?");
      for (uint64_t seq : view.entriesTouching(address, after, limit)) {
        q.bind(1, static_cast<int64_t>(seq));
        if (q.executeStep()) out.push_back(recordFromRow(q));
        q.reset();
      }
      return out;
    });
  }

  Result<TxRecord> transaction(const std::string& hash) override {
    const auto prefix = txHashPrefix(hash);
    if (!prefix || hash.size() != 64)
      return notFound("transaction " + hash + " is not in the ledger");
    // Entries not yet in tx_hashes first, before the read snapshot starts: an entry leaves
    // memory only after the commit that wrote it to the table, so a snapshot taken later sees
    // it there.
    const std::vector<uint64_t> recent = hashIndex_.recent(*prefix);
    return withReader<TxRecord>([&](SQLite::Database& db) -> Result<TxRecord> {
      SQLite::Transaction snapshot(db);
      SQLite::Statement bySeq(
          db, std::string("SELECT ") + kTxColumns + " FROM txlog WHERE seq = ? AND hash = ?");
      for (uint64_t seq : recent) {
        bySeq.bind(1, static_cast<int64_t>(seq));
        bySeq.bind(2, hash);
        if (bySeq.executeStep()) return recordFromRow(bySeq);
        bySeq.reset();
      }
      SQLite::Statement q(db, std::string("SELECT ") + kTxColumns +
                                  " FROM txlog WHERE seq IN (SELECT seq FROM tx_hashes WHERE "
                                  "prefix = ?) AND hash = ?");
      q.bind(1, static_cast<int64_t>(*prefix));
      q.bind(2, hash);
      if (!q.executeStep()) return notFound("transaction " + hash + " is not in the ledger");
      return recordFromRow(q);
    });
  }

  Result<std::vector<Event>> events(uint64_t after, size_t limit, int64_t waitMs) override {
    if (waitMs > 0 && eventHead() <= after) {
      // Long poll: block this (caller's) thread until an event lands or time runs out.
      auto state = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
      auto fired = std::make_shared<bool>(false);
      notifyEvents(after, waitMs, [state, fired] {
        std::lock_guard lk(state->first);
        *fired = true;
        state->second.notify_all();
      });
      std::unique_lock lk(state->first);
      state->second.wait(lk, [&] { return *fired; });
    }
    using V = std::vector<Event>;
    return withReader<V>([&](SQLite::Database& db) -> Result<V> {
      SQLite::Statement q(
          db,
          "SELECT seq, tx_seq, time, type, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?");
      q.bind(1, static_cast<int64_t>(after));
      q.bind(2, static_cast<int64_t>(limit));
      V out;
      while (q.executeStep()) {
        Event e;
        e.seq = static_cast<uint64_t>(q.getColumn(0).getInt64());
        e.txSeq = static_cast<uint64_t>(q.getColumn(1).getInt64());
        e.time = q.getColumn(2).getInt64();
        e.type = q.getColumn(3).getString();
        e.data = json::parse(q.getColumn(4).getString());
        out.push_back(std::move(e));
      }
      return out;
    });
  }

  void notifyEvents(uint64_t after, int64_t timeoutMs, std::function<void()> ready) override {
    std::unique_lock lk(waitMu_);
    if (eventHead_ > after || closing_) {
      lk.unlock();
      ready();
      return;
    }
    auto it = waiters_.insert(waiters_.end(), Waiter{after, 0, std::move(ready)});
    const uint64_t id = ++waiterSeq_;
    it->id = id;
    it->timer = clock_.callAfter(Millis(timeoutMs), [this, id] { fireWaiter(id); });
  }

 private:
  struct Item {
    SignedTx tx;
    SubmitCallback done;
  };
  struct Waiter {
    uint64_t after;
    TimerId timer;
    std::function<void()> ready;
    uint64_t id = 0;
  };

  uint64_t eventHead() {
    std::lock_guard lk(waitMu_);
    return eventHead_;
  }

  void fireWaiter(uint64_t id) {
    std::function<void()> ready;
    {
      std::lock_guard lk(waitMu_);
      for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
        if (it->id == id) {
          ready = std::move(it->ready);
          waiters_.erase(it);
          break;
        }
      }
    }
    if (ready) ready();
  }

  void publishEventHead(uint64_t head) {
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lk(waitMu_);
      eventHead_ = head;
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->after < head) {
          clock_.cancel(it->timer);
          ready.push_back(std::move(it->ready));
          it = waiters_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& r : ready) r();
  }

  void scheduleTick() {
    tickTimer_ = clock_.callAfter(Millis(1000), [this] {
      {
        std::lock_guard lk(mu_);
        if (stop_) return;
        tickDue_ = true;
      }
      cv_.notify_one();
      scheduleTick();
    });
  }

  static int walHook(void* self, sqlite3*, const char*, int pages) {
    auto* l = static_cast<EmbeddedLedger*>(self);
    if (pages >= kCheckpointPages) {
      std::lock_guard lk(l->ckMu_);
      l->ckDue_ = true;
      l->ckCv_.notify_one();
    }
    return SQLITE_OK;
  }

  void checkpointLoop() {
    std::unique_ptr<SQLite::Database> db;
    try {
      db =
          std::make_unique<SQLite::Database>(ledgerDbPath(config_.dataDir), SQLite::OPEN_READWRITE);
      db->setBusyTimeout(5000);
      // A connection only opens the WAL when it first reads the database. Before that,
      // sqlite3_wal_checkpoint_v2() silently does nothing (SQLite < 3.44), and the WAL grows
      // without bound: read the schema once so the checkpoints below are real.
      SQLite::Statement(*db, "SELECT count(*) FROM sqlite_master").executeStep();
    } catch (const std::exception& e) {
      spdlog::error("ledger: checkpointer cannot open the database: {}", e.what());
      return;
    }
    std::unique_lock lk(ckMu_);
    while (true) {
      ckCv_.wait(lk, [&] { return ckStop_ || ckDue_; });
      if (ckStop_) break;
      ckDue_ = false;
      lk.unlock();
      int logPages = 0, done = 0;
      int rc = sqlite3_wal_checkpoint_v2(db->getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                         &logPages, &done);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        spdlog::warn("ledger: WAL checkpoint failed: {}", sqlite3_errstr(rc));
      // A passive checkpoint copies the frames that existed when it started; the committer keeps
      // appending meanwhile, so this thread alone never reaches the end of the WAL and SQLite
      // can never rewind it. Once only a little is left, the committer finishes the job between
      // two group commits (cheap: a few frames and one fsync), and its next write rewinds the WAL.
      if (rc == SQLITE_OK && logPages - done <= kFinishPages) finishCheckpoint_ = true;
      lk.lock();
    }
    lk.unlock();
    // On shutdown, fold the WAL back into the database file.
    sqlite3_wal_checkpoint_v2(db->getHandle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                              nullptr);
  }

  void commitLoop() {
    std::deque<Item> batch;
    while (true) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !queue_.empty() || tickDue_; });
        if (stop_) return;
        tickDue_ = false;
        while (!queue_.empty() && batch.size() < config_.maxBatch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      commitBatch(batch);
      batch.clear();
      if (finishCheckpoint_.exchange(false)) finishCheckpoint();
    }
  }

  // Runs on the committer between two group commits, when no frame is being appended, so the
  // checkpoint can reach the end of the WAL.
  void finishCheckpoint() {
    int logPages = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(writeDb_->getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       &logPages, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      spdlog::warn("ledger: WAL checkpoint failed: {}", sqlite3_errstr(rc));
  }

  void commitBatch(std::deque<Item>& batch) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t t = std::max(clock_.nowMillis(), lastTime_);
    std::vector<Result<TxReceipt>> results;
    results.reserve(batch.size());
    bool wrote = false;
    try {
      auto due = sm_.dueClosings(t);
      auto expiring = sm_.dueMarketExpiries(t);
      if (batch.empty() && due.empty() && expiring.empty()) return;
      writeDb_->exec("BEGIN IMMEDIATE");
      for (const auto& id : due) {
        auto r = sm_.finalizeClosing(id, t);
        if (!r.isOk()) spdlog::error("ledger: finalizing escrow {}: {}", id, r.status().toString());
        wrote = wrote || r.isOk();
      }
      for (const auto& id : expiring) {
        auto r = sm_.expireMarket(id, t);
        if (!r.isOk()) spdlog::error("ledger: expiring {}: {}", id, r.status().toString());
        wrote = wrote || r.isOk();
      }
      for (auto& item : batch) {
        auto r = sm_.apply(item.tx, t);
        if (r.isOk()) {
          wrote = true;
          results.emplace_back(std::move(r->receipt));
        } else {
          results.emplace_back(r.status());
        }
      }
      const auto indexed = sm_.takeLogged();  // (hash prefix, seq) of this batch's entries
      hashIndex_.stage(indexed);
      hashIndex_.writeSlice(*writeDb_, indexed.size());
      writeDb_->exec("COMMIT");
      hashIndex_.committed();
    } catch (const std::exception& e) {
      spdlog::error("ledger: group commit failed, batch rolled back: {}", e.what());
      try {
        writeDb_->exec("ROLLBACK");
      } catch (...) {
      }
      hashIndex_.aborted();
      sm_.resync();
      results.assign(batch.size(), unavailable(std::string("ledger commit failed: ") + e.what()));
      wrote = false;
    }
    if (wrote) lastTime_ = t;
    if (mBatches_) {
      mBatches_->inc();
      mCommit_->observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      mHead_->set(static_cast<int64_t>(sm_.headSeq()));
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (results[i].isOk()) {
        if (mAccepted_) mAccepted_->inc();
      } else if (mRejected_) {
        mRejected_->inc();
      }
      batch[i].done(std::move(results[i]));
    }
    if (wrote) publishEventHead(sm_.eventSeq());
  }

  template <typename T, typename F>
  Result<T> withReader(F&& fn) {
    std::unique_ptr<SQLite::Database> db;
    {
      std::lock_guard lk(readMu_);
      if (!readers_.empty()) {
        db = std::move(readers_.back());
        readers_.pop_back();
      }
    }
    try {
      if (!db) {
        db = std::make_unique<SQLite::Database>(ledgerDbPath(config_.dataDir),
                                                SQLite::OPEN_READONLY);
        db->setBusyTimeout(5000);
      }
      Result<T> r = fn(*db);
      std::lock_guard lk(readMu_);
      if (readers_.size() < 8) readers_.push_back(std::move(db));
      return r;
    } catch (const std::exception& e) {
      return internalError(std::string("ledger read failed: ") + e.what());
    }
  }

  LedgerConfig config_;
  Clock& clock_;
  std::unique_ptr<SQLite::Database> writeDb_;
  StateMachine sm_;        // committer thread only (and init)
  TxHashIndex hashIndex_;  // written by the committer; recent() from any thread
  GenesisParams params_;
  int64_t lastTime_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  bool tickDue_ = false;
  TimerId tickTimer_ = 0;
  std::thread committer_;

  // Background WAL checkpointing, triggered once the WAL holds kCheckpointPages pages.
  static constexpr int kCheckpointPages = 4000;  // ~16 MiB with 4 KiB pages
  // The committer completes a background checkpoint that got within this many frames of the end.
  static constexpr int kFinishPages = 1000;
  std::atomic<bool> finishCheckpoint_{false};
  std::mutex ckMu_;
  std::condition_variable ckCv_;
  bool ckDue_ = false;
  bool ckStop_ = false;
  std::thread checkpointer_;

  std::mutex waitMu_;
  std::list<Waiter> waiters_;
  uint64_t waiterSeq_ = 0;
  uint64_t eventHead_ = 0;
  bool closing_ = false;  // guarded by waitMu_

  std::mutex readMu_;
  std::vector<std::unique_ptr<SQLite::Database>> readers_;

  Counter* mAccepted_ = nullptr;
  Counter* mRejected_ = nullptr;
  Counter* mBatches_ = nullptr;
  Histogram* mCommit_ = nullptr;
  Gauge* mHead_ = nullptr;
};

Result<std::unique_ptr<Ledger>> createEmbeddedLedger(const LedgerConfig& config) {
  if (config.dataDir.empty()) return invalidArgument("embedded ledger: a data dir is required");
  if (!config.clock) return invalidArgument("embedded ledger: a clock is required");
  if (config.chainId.empty() || config.chainId.size() > 64)
    return invalidArgument("chain id: expected 1-64 characters");
  std::error_code ec;
  std::filesystem::create_directories(config.dataDir, ec);
  if (ec) return unavailable("cannot create data dir " + config.dataDir + ": " + ec.message());
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(ledgerDbPath(config.dataDir),
                                            SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    configure(*db, config.syncFull);
  } catch (const std::exception& e) {
    return unavailable("cannot open ledger database " + ledgerDbPath(config.dataDir) + ": " +
                       e.what());
  }
  auto ledger = std::make_unique<EmbeddedLedger>(config, std::move(db));
  RETURN_IF_ERROR(ledger->init());
  return std::unique_ptr<Ledger>(std::move(ledger));
}

struct LogReplayer::Impl {
  Impl() : db(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE), sm(db) {}
  SQLite::Database db;
  StateMachine sm;
  uint64_t count = 0;
};

LogReplayer::LogReplayer() : impl_(std::make_unique<Impl>()) {}
LogReplayer::~LogReplayer() = default;

Status LogReplayer::add(const TxRecord& entry) {
  try {
    if (entry.seq != impl_->count + 1)
      return internalError("log entry " + std::to_string(entry.seq) + " follows entry " +
                           std::to_string(impl_->count) + ": the log has a gap");
    if (entry.seq > 1 && entry.kind == "genesis")
      return internalError("log entry " + std::to_string(entry.seq) + " is a second genesis");
    if (entry.seq == 1 && entry.kind != "genesis")
      return internalError("log entry 1 is not a genesis entry");
    SQLite::Transaction t(impl_->db);
    RETURN_IF_ERROR(impl_->sm.replayEntry(entry));
    t.commit();
    ++impl_->count;
    return Status::ok();
  } catch (const std::exception& e) {
    return internalError(std::string("replay: ") + e.what());
  }
}

uint64_t LogReplayer::entries() const { return impl_->count; }
std::string LogReplayer::headHash() const { return impl_->sm.headHash(); }
std::string LogReplayer::stateRoot() { return impl_->sm.stateRoot(); }

Result<std::string> replayLog(const std::vector<TxRecord>& entries) {
  LogReplayer r;
  for (const auto& e : entries) RETURN_IF_ERROR(r.add(e));
  return r.stateRoot();
}

Result<VerifyReport> verifyLedgerDatabase(const std::string& dbPath) {
  if (!std::filesystem::exists(dbPath)) return notFound("no ledger database at " + dbPath);
  try {
    SQLite::Database db(dbPath, SQLite::OPEN_READONLY);
    db.setBusyTimeout(5000);
    SQLite::Transaction snapshot(db);
    StateMachine stored(db, false);
    VerifyReport rep;
    rep.storedRoot = stored.stateRoot();
    rep.headHash = stored.headHash();
    LogReplayer replayer;
    SQLite::Statement q(db, std::string("SELECT ") + kTxColumns + " FROM txlog ORDER BY seq");
    while (q.executeStep()) RETURN_IF_ERROR(replayer.add(recordFromRow(q)));
    rep.entries = replayer.entries();
    rep.replayedRoot = replayer.stateRoot();
    if (replayer.headHash() != rep.headHash)
      return internalError("chain head mismatch: stored " + rep.headHash + ", replayed " +
                           replayer.headHash());
    if (rep.replayedRoot != rep.storedRoot)
      return internalError("state root mismatch: stored " + rep.storedRoot + ", replay gives " +
                           rep.replayedRoot);
    return rep;
  } catch (const std::exception& e) {
    return internalError(std::string("verify: ") + e.what());
  }
}

}  // namespace mercato::ledger::embedded
