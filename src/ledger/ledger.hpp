// Ledger: the one interface through which publishers, providers, the CLI and the UI read and
// change the shared state: accounts, the provider registry and escrows.
//
// Backends (the name -> create() table is in ledger.cpp):
//   "embedded" — SQLite state machine with a hash-chained transaction log, in this process
//                (ledger/embedded/). A ledger-host node serves it over HTTP (ledger/service.hpp).
//   "http"     — a client of a ledger-host node's /ledger/v1 API (ledger/remote/).
//   An EVM backend joins the table in a later issue.
//
// Transactions are signed by the caller (tx.hpp) and submitted; the ledger checks signature,
// chain id, nonce and the rules of each kind, and either applies the transaction atomically
// (with its log entry) or rejects it with no state change.
//
// Thread-safety: every method is safe to call from any thread. submit()'s callback runs on a
// ledger-owned thread and must not block.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/status.hpp"
#include "ledger/market.hpp"
#include "ledger/tx.hpp"
#include "ledger/types.hpp"

namespace mercato::ledger {

struct LedgerConfig {
  std::string backend = "embedded";
  // embedded
  std::string dataDir;  // holds ledger.db; "" = in-memory (tests)
  std::string chainId = "mercato-dev";
  bool devMode = false;  // enables mint
  int64_t closeGraceMs = 60'000;
  Micros mintCap = 1'000'000 * kMicrosPerToken;  // per mint transaction
  Micros bidDeposit = kMicrosPerToken / 10;      // locked per open bid (genesis parameter)
  int64_t maxOrderTtlMs = 24 * 3600 * 1000;      // longest order/bid time to live (genesis)
  bool syncFull = true;                // fsync on every group commit (PRAGMA synchronous=FULL)
  size_t maxBatch = 4096;              // group commit size
  Clock* clock = nullptr;              // required for embedded
  MetricsRegistry* metrics = nullptr;  // optional
  // http
  std::string url;  // "http://127.0.0.1:7400"
};

struct EscrowFilter {
  std::string publisher;  // "" = any
  std::string provider;   // "" = any
  std::optional<EscrowState> state;
};

class Ledger {
 public:
  using SubmitCallback = std::function<void(Result<TxReceipt>)>;

  virtual ~Ledger() = default;

  // Submits a signed transaction; `done` receives the receipt once it is durable, or the
  // reason it was rejected (the state is then unchanged).
  virtual void submit(SignedTx tx, SubmitCallback done) = 0;
  // Blocking form of submit().
  Result<TxReceipt> submitAndWait(SignedTx tx);

  virtual Result<LedgerInfo> info() = 0;
  // kNotFound for an address the ledger has never seen.
  virtual Result<Account> account(const std::string& address) = 0;
  virtual Result<ProviderRecord> provider(const std::string& owner) = 0;
  virtual Result<std::vector<ProviderRecord>> providers(bool includeInactive) = 0;
  virtual Result<Escrow> escrow(const std::string& id) = 0;
  virtual Result<std::vector<Escrow>> escrows(const EscrowFilter& filter) = 0;
  // Log entries with seq > after, oldest first, at most `limit`; when `address` is set, only
  // entries that touch that account.
  virtual Result<std::vector<TxRecord>> transactions(uint64_t after, size_t limit,
                                                     const std::string& address = "") = 0;
  virtual Result<TxRecord> transaction(const std::string& hash) = 0;

  // Marketplace (market.hpp). kNotFound for an unknown id. Lists are newest first.
  virtual Result<Order> order(const std::string& id) = 0;
  virtual Result<std::vector<Order>> orders(const OrderFilter& filter) = 0;
  virtual Result<Bid> bid(const std::string& id) = 0;
  virtual Result<std::vector<Bid>> bids(const BidFilter& filter) = 0;
  // A lease's id is its escrow's id.
  virtual Result<Lease> lease(const std::string& id) = 0;
  virtual Result<std::vector<Lease>> leases(const LeaseFilter& filter) = 0;
  // The current attestations about `provider`, one per auditor, ordered by auditor.
  virtual Result<std::vector<Attestation>> attestations(const std::string& provider) = 0;
  // Events with seq > after, oldest first. When none exist yet and waitMs > 0, waits up to
  // waitMs for the first one (long poll).
  virtual Result<std::vector<Event>> events(uint64_t after, size_t limit, int64_t waitMs) = 0;
  // Calls `ready` once an event with seq > after exists, or after `timeoutMs` (from a
  // ledger-owned thread), without blocking the caller. Used by the HTTP long poll.
  virtual void notifyEvents(uint64_t after, int64_t timeoutMs, std::function<void()> ready) = 0;

  // The next nonce to use for `address` (1 for an unseen account).
  Result<uint64_t> nextNonce(const std::string& address);
};

// Creates the backend named by config.backend; an unknown name is an error listing the known.
Result<std::unique_ptr<Ledger>> createLedger(const LedgerConfig& config);

}  // namespace mercato::ledger
