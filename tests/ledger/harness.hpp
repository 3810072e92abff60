// Test support for the ledger: deterministic keys and a StateMachine on an in-memory SQLite
// database, so rules are exercised without threads or disks.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crypto/keys.hpp"
#include "ledger/embedded/state_machine.hpp"
#include "ledger/tx.hpp"

namespace mercato::ledger::testing {

// Every log entry in `db`, oldest first.
std::vector<TxRecord> readLog(SQLite::Database& db);

// The identity for seed byte `n` (deterministic).
crypto::Identity key(uint8_t n);

struct Harness {
  explicit Harness(bool dev = true, int64_t graceMs = 10'000, Micros mintCap = 1'000'000'000'000);
  SQLite::Database db;
  embedded::StateMachine sm;
  int64_t now = 1'700'000'000'000;
  std::string chain = "test-chain";
  std::map<std::string, uint64_t> nonces;

  SignedTx sign(const crypto::Identity& id, TxKind kind, TxBody body);
  // Signs with the next nonce and applies inside its own transaction.
  Result<embedded::Applied> run(const crypto::Identity& id, TxKind kind, TxBody body);
  Result<embedded::Applied> apply(const SignedTx& tx);
  Micros balance(const std::string& address);
  ProviderBody providerBody(Prices p = {1000, 2000, 3000, 4000});
  // Expects `f` to fail with `code` and a message containing `text`, leaving nothing changed
  // (same state root and head as before).
  void expectRejected(const std::function<Result<embedded::Applied>()>& f, Code code,
                      const std::string& text);
};

}  // namespace mercato::ledger::testing
