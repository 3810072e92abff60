// BidEngine: the provider's answer to open orders on the ledger (docs/bidengine.md).
//
// It follows the ledger's event log from a persisted cursor. For each order.created it
//   1. reads the order and checks the ledger for a bid of ours on it (resume without
//      double-bidding: a replayed or rescanned order we already bid on is skipped),
//   2. checks the order's required attributes against our registry entry and its auditor
//      requirements against the attestations about us,
//   3. reserves the order's total resources in the CapacityBook (capacity minus leases minus
//      open bids minus orders being evaluated); an order that does not fit waits until a
//      reservation is released,
//   4. prices it with the live pricing strategy, refuses (no bid, reason counted) when any term
//      is over the order's caps — never clamps — and submits bid.create with the bid TTL.
// The reservation stays while the bid is open and becomes the lease's when we win; it is
// released when the bid is lost, closed or expires, when the order closes or expires, when the
// lease's escrow closes, and when the provider ends the lease itself (leaseEnded(): it removed
// the deployment of an exhausted escrow that the publisher never closes). A bid that expires
// while its order is still open is renewed: the order is evaluated again, as a new one.
// start() rebuilds the reservations from the ledger (our open bids, and our leases whose escrow
// is not closed and that the provider has not ended), so a restart neither overcommits nor
// forgets a lease.
//
// The cursor saved is a low-water mark: the event before the oldest order still being
// evaluated, so a crash re-evaluates (and the ledger check deduplicates) rather than skips.
// Without a saved cursor the engine starts at the ledger's head and scans the open orders.
//
// Threads: one watcher thread waits on Ledger::notifyEvents and reads event batches; one
// strand thread owns all engine state (events, decisions, the CapacityBook); a worker pool does
// the blocking work (ledger reads, pricing scripts, bid submission) and posts results back to
// the strand. Timers (pricing file poll) run on the injected Clock and post to the workers.
//
// Thread-safety: public methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"
#include "provider/bidengine/bidding_config.hpp"

namespace mercato::provider::bidengine {

// Signs and submits one transaction from the provider account and waits for its receipt;
// returns the nonce it used (bid ids are bidIdFor(provider, nonce)). Called from several workers
// at once; it must order nonces with every other submitter of the same account (the Provider
// passes its own ledger::AccountSubmitter, shared with claims and registration).
using SubmitFn = std::function<Result<uint64_t>(ledger::TxKind, ledger::TxBody)>;

struct BidEngineOptions {
  ledger::Ledger* ledger = nullptr;            // required
  Clock* clock = nullptr;                      // required
  const crypto::Identity* identity = nullptr;  // required: the provider account
  std::string chainId = "mercato-dev";
  ledger::Capacity capacity;    // what the provider offers in total
  ledger::Prices defaultRates;  // the registered prices (scale default)
  BiddingConfig config;
  SubmitFn submit;  // default: an own ledger::AccountSubmitter (pipelined nonces)
  std::function<Result<uint64_t>()> loadCursor;  // 0 = none saved; default: none
  std::function<Status(uint64_t)> saveCursor;    // default: not persisted
  // True when the provider has ended this lease itself (see leaseEnded()); start() then does
  // not hold its capacity. Default: none has.
  std::function<bool(const std::string& lease)> leaseEndedLocally;
  MetricsRegistry* metrics = nullptr;  // default: a private registry
  size_t eventBatch = 512;
  // How long one wait for new events lasts before the watcher re-arms it.
  int64_t longPollMs = 2'000;
  size_t maxInFlight = 2'048;  // evaluations in flight before the watcher stops reading
};

struct ReservationView {
  std::string order;
  std::string state;  // evaluating | bid | lease
  std::string bid, lease;
  ledger::Capacity resources;
};

struct BidEngineStatus {
  bool running = false;
  uint64_t cursor = 0;  // last event applied
  std::string strategy;
  uint64_t configGeneration = 0;
  std::string configError;
  size_t openOrders = 0;  // orders seen open on the ledger (not matched, closed or expired)
  size_t evaluating = 0;
  size_t waitingForCapacity = 0;
  size_t openBids = 0;
  size_t leases = 0;
  ledger::Capacity capacity, reserved, available;
  uint64_t ordersSeen = 0, bidsPlaced = 0, bidsWon = 0, bidsRenewed = 0;
  std::map<std::string, uint64_t> skipped;  // reason -> count
  std::vector<ReservationView> reservations;
};
nlohmann::json toJson(const BidEngineStatus& s);

class BidEngine {
 public:
  static Result<std::unique_ptr<BidEngine>> create(BidEngineOptions options);
  ~BidEngine();

  // Rebuilds reservations from the ledger, then follows events. Fails when the ledger can't be
  // read (the caller may retry). REQUIRES: called once.
  Status start();
  // Stops the watcher and timers; waits for in-flight work. Idempotent.
  void stop();

  BidEngineStatus status();
  // The provider no longer serves this lease (it removed its deployment): its capacity is free
  // although its escrow may never close. Unknown ids are ignored. Asynchronous.
  void leaseEnded(const std::string& lease);
  // Checks the pricing file now (also done every configPollMs on the Clock). Blocking.
  Status reloadPricing();
  // For tests and benches: waits (real time) until every event up to `seq` is applied and no
  // evaluation is in flight. False on timeout.
  bool waitIdle(uint64_t seq, std::chrono::milliseconds timeout);

  class Impl;

 private:
  explicit BidEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mercato::provider::bidengine
