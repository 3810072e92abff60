// StateMachine: the embedded ledger's deterministic state transition function over SQLite.
//
// apply() checks one decoded, signature-verified transaction against the current state and, if
// every rule holds, changes the state, appends the hash-chained log entry and records its
// events — all inside one SAVEPOINT, so a rejected transaction leaves no trace. The caller owns
// the enclosing SQLite transaction (group commit): it decides when to COMMIT.
//
// The same code runs live and in replay (verify), which is what makes `ledger verify`
// meaningful: given the log's entries and their recorded times, replay must reproduce the state
// root byte for byte.
//
// Thread-safety: not thread-safe. One StateMachine per write connection, used by one thread.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "ledger/tx.hpp"
#include "ledger/types.hpp"

namespace mercato::ledger::embedded {

// Consensus parameters, fixed at genesis and stored in its log entry.
struct GenesisParams {
  std::string chainId;
  bool devMode = false;
  int64_t closeGraceMs = 60'000;
  Micros mintCap = 0;
  std::vector<std::pair<std::string, Micros>> allocations;  // initial balances
};
nlohmann::json toJson(const GenesisParams& g);
Result<GenesisParams> genesisFromJson(const nlohmann::json& j);

struct Applied {
  TxReceipt receipt;
  std::vector<Event> events;
};

class StateMachine {
 public:
  // Creates the tables if missing (unless `createSchema` is false, for read-only views).
  // REQUIRES: `db` outlives the StateMachine.
  explicit StateMachine(SQLite::Database& db, bool createSchema = true);
  ~StateMachine();

  // True when the database already holds a genesis entry.
  bool initialized();
  // Loads the genesis parameters of an initialized database.
  Result<GenesisParams> loadGenesis();
  // Writes the genesis entry (seq 1). REQUIRES: !initialized(), inside a transaction.
  Result<Applied> applyGenesis(const GenesisParams& params, int64_t timeMs);

  // Applies a decoded, signature-verified transaction at ledger time `timeMs`.
  // REQUIRES: inside a transaction; params loaded (after applyGenesis/loadGenesis).
  Result<Applied> apply(const SignedTx& tx, int64_t timeMs);

  // Escrows in `closing` whose grace period has ended by `timeMs`.
  std::vector<std::string> dueClosings(int64_t timeMs);
  // Refunds and closes one escrow whose grace ended, as a logged system entry.
  Result<Applied> finalizeClosing(const std::string& escrowId, int64_t timeMs);

  // Re-applies a log entry as recorded (replay): decodes it, verifies signatures, applies it at
  // its recorded time, and checks that the resulting entry hash matches the recorded one.
  Status replayEntry(const TxRecord& entry);

  // BLAKE2b-256 over every account, provider and escrow row in key order, plus the supply.
  std::string stateRoot();
  // Re-reads the head from the database; call after a failed COMMIT rolled back a batch.
  void resync();
  Micros totalSupply();
  uint64_t headSeq();
  std::string headHash();
  uint64_t eventSeq();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mercato::ledger::embedded
