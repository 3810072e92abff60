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
#include <string_view>
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
  // Marketplace parameters; absent in chains created before the marketplace, which then use
  // the defaults below (kept in the genesis JSON only when set, so old logs replay unchanged).
  std::optional<Micros> bidDeposit;
  std::optional<int64_t> maxOrderTtlMs;
  static constexpr Micros kDefaultBidDeposit = kMicrosPerToken / 10;
  static constexpr int64_t kDefaultMaxOrderTtlMs = 24 * 3600 * 1000;
  Micros effectiveBidDeposit() const { return bidDeposit.value_or(kDefaultBidDeposit); }
  int64_t effectiveMaxOrderTtlMs() const { return maxOrderTtlMs.value_or(kDefaultMaxOrderTtlMs); }
};
nlohmann::json toJson(const GenesisParams& g);
Result<GenesisParams> genesisFromJson(const nlohmann::json& j);

// The first 8 bytes of a hex transaction hash: the key of the tx_hashes index. nullopt unless
// `hexHash` starts with 16 lowercase hex digits.
std::optional<uint64_t> txHashPrefix(std::string_view hexHash);

struct Applied {
  TxReceipt receipt;
  std::vector<Event> events;
};

class StateMachine {
 public:
  // Creates the tables if missing, or migrates an older storage layout in place (unless
  // `createSchema` is false, for read-only views). Throws SQLite::Exception or
  // std::runtime_error when the database cannot be brought to the current layout.
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

  // Open orders and bids whose time to live ended by `timeMs` (MarketRules::dueExpiries).
  std::vector<std::string> dueMarketExpiries(int64_t timeMs);
  // Expires one of them as a logged system entry ("order.expire" / "bid.expire").
  Result<Applied> expireMarket(const std::string& id, int64_t timeMs);

  // Re-applies a log entry as recorded (replay): decodes it, verifies signatures, applies it at
  // its recorded time, and checks that the resulting entry hash matches the recorded one.
  Status replayEntry(const TxRecord& entry);

  // Seqs of the log entries that touch `address` with seq > after, oldest first, at most
  // `limit`. Read-only: works on a view (createSchema = false) of a current-layout database.
  std::vector<uint64_t> entriesTouching(const std::string& address, uint64_t after, size_t limit);

  // BLAKE2b-256 over every account, provider, escrow and market row in key order, plus the
  // supply.
  std::string stateRoot();
  // Re-reads the head from the database; call after a failed COMMIT rolled back a batch.
  void resync();
  // After trackLogged(), takeLogged() returns the (hash prefix, seq) of every log entry applied
  // since its last call (or resync()), for the hash index: every kind, user or system, goes
  // through here. Untracked (replay, tests), nothing is kept.
  void trackLogged();
  std::vector<std::pair<uint64_t, uint64_t>> takeLogged();
  Micros totalSupply();
  uint64_t headSeq();
  std::string headHash();
  uint64_t eventSeq();

 public:
  struct Impl;  // defined in state_machine.cpp; public so its helpers there can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mercato::ledger::embedded
