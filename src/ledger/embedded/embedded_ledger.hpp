// EmbeddedLedger: the Ledger backend that keeps state in SQLite (WAL) in this process.
//
// Writes: submit() checks the signature on the caller's thread (so verification runs in
// parallel on the HTTP I/O threads), then queues the transaction for the single committer
// thread. The committer takes everything queued (up to maxBatch), applies each transaction in
// its own savepoint inside one SQLite transaction, commits once (group commit: one fsync per
// batch), and only then answers the callbacks. An acknowledged transaction is therefore durable.
// Before each batch, and on a 1 s Clock tick, escrows whose close grace has ended are
// finalized as logged system entries.
//
// Reads: a pool of read connections; WAL lets them run beside the committer.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <memory>
#include <string>

#include "ledger/ledger.hpp"

namespace mercato::ledger::embedded {

class EmbeddedLedger;

// Creates (or opens) the ledger in config.dataDir/ledger.db. A new database gets a genesis entry
// from the config; an existing one must have the same chain id.
Result<std::unique_ptr<Ledger>> createEmbeddedLedger(const LedgerConfig& config);

// The database file inside a data dir.
std::string ledgerDbPath(const std::string& dataDir);

struct VerifyReport {
  uint64_t entries = 0;
  std::string headHash;
  std::string storedRoot;
  std::string replayedRoot;
};

// Offline verification of a ledger database: checks the hash chain and every signature, replays
// the whole log from genesis into a scratch in-memory database and compares the state roots.
Result<VerifyReport> verifyLedgerDatabase(const std::string& dbPath);

// Replays log entries (oldest first, starting at genesis) into a scratch state and returns its
// state root. Used by offline verify and by `mercato ledger verify` against a remote node.
Result<std::string> replayLog(const std::vector<TxRecord>& entries);

// Incremental form of replayLog for logs fetched page by page.
class LogReplayer {
 public:
  LogReplayer();
  ~LogReplayer();
  Status add(const TxRecord& entry);
  uint64_t entries() const;
  std::string headHash() const;
  std::string stateRoot();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mercato::ledger::embedded
