// MarketRules: the embedded ledger's rules and storage for orders, bids, leases and auditor
// attestations (ledger/market.hpp describes the model).
//
// The StateMachine owns the enclosing SAVEPOINT and the log entry; MarketRules checks one
// market transaction, changes its own tables and reaches accounts, providers, escrows and events
// through LedgerAccess, so a rejection anywhere rolls back everything. Expiries of orders and
// bids run as logged system entries ("order.expire" / "bid.expire") that the committer applies
// when due, exactly like escrow finalization, so replay reproduces them.
//
// The static query functions read the market tables on any connection (the ledger's readers).
// Thread-safety: not thread-safe; one instance per write connection, like StateMachine.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "crypto/hash.hpp"
#include "ledger/market.hpp"
#include "ledger/tx.hpp"
#include "ledger/types.hpp"

namespace mercato::ledger::embedded {

// What market rules may do to the rest of the state, inside the current apply.
class LedgerAccess {
 public:
  virtual ~LedgerAccess() = default;
  virtual Status credit(const std::string& address, Micros amount) = 0;
  // Fails with an overdraft message when the balance is short.
  virtual Status debit(const std::string& address, Micros amount) = 0;
  virtual std::optional<ProviderRecord> provider(const std::string& owner) = 0;
  virtual std::optional<Escrow> escrow(const std::string& id) = 0;
  virtual void storeEscrow(const Escrow& e) = 0;
  // Records that the entry concerns `address` (its history index).
  virtual void touch(const std::string& address) = 0;
  virtual void event(int64_t time, const std::string& type, nlohmann::json data) = 0;
};

struct MarketParams {
  Micros bidDeposit = 0;
  int64_t maxTtlMs = 0;
};

class MarketRules {
 public:
  // Creates the market tables if `createSchema`. REQUIRES: `db` outlives this object.
  MarketRules(SQLite::Database& db, bool createSchema);
  ~MarketRules();

  static bool handles(TxKind kind);
  // Applies a market transaction at ledger time `t`; the JSON is the receipt's result.
  Result<nlohmann::json> apply(const SignedTx& tx, int64_t t, const MarketParams& params,
                               LedgerAccess& access);

  // Ids of open orders and bids whose time ran out by `t`: orders first, then bids whose
  // order is not itself due (its expiry closes them), each in expiry order.
  std::vector<std::string> dueExpiries(int64_t t);
  // Expires one due order ("ord_…") or bid ("bid_…"); the JSON is the system entry's body.
  Result<nlohmann::json> expire(const std::string& id, int64_t t, LedgerAccess& access);

  // Feeds every market row, in key order, into a state root (a database from before the
  // marketplace, without its tables, hashes as empty tables).
  static void hashInto(SQLite::Database& db, crypto::Hasher& h);

  // Read side, on any connection holding the schema.
  static Result<Order> order(SQLite::Database& db, const std::string& id);
  static Result<std::vector<Order>> orders(SQLite::Database& db, const OrderFilter& f);
  static Result<Bid> bid(SQLite::Database& db, const std::string& id);
  static Result<std::vector<Bid>> bids(SQLite::Database& db, const BidFilter& f);
  static Result<Lease> lease(SQLite::Database& db, const std::string& id);
  static Result<std::vector<Lease>> leases(SQLite::Database& db, const LeaseFilter& f);
  static Result<std::vector<Attestation>> attestations(SQLite::Database& db,
                                                       const std::string& provider);
  // Deposits locked in open orders and open bids (for conservation checks).
  static Micros held(SQLite::Database& db);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mercato::ledger::embedded
