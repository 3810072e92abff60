// BidEngine::Impl: the engine's state and threads (internal; see bid_engine.hpp for the
// behaviour). engine_impl.cpp holds the threads, start/stop and the restart rebuild;
// engine_orders.cpp applies events and runs evaluations.
//
// Ownership: fields marked [strand] are touched only by jobs on `strand_` (before start()
// returns, by start() itself, while no job runs). [any] fields are atomics or carry their
// own mutex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/worker_pool.hpp"
#include "ledger/submitter.hpp"
#include "provider/bidengine/bid_engine.hpp"
#include "provider/bidengine/capacity_book.hpp"

namespace mercato::provider::bidengine {

// Wakes the watcher: a new event on the ledger (eventReady), room below maxInFlight (freed), or
// stop. Shared with ledger callbacks that may outlive the engine.
struct Wake {
  std::mutex mu;
  std::condition_variable cv;
  bool eventReady = false;
  bool armed = false;  // a notifyEvents() call is outstanding
  bool freed = false;
  bool stop = false;
  void set(bool Wake::*flag) {
    {
      std::lock_guard l(mu);
      this->*flag = true;
      if (flag == &Wake::eventReady) armed = false;
    }
    cv.notify_all();
  }
};

// Pricing file timer state, shared with Clock callbacks that may outlive the engine.
struct TimerState {
  std::mutex mu;
  bool stopping = false;
  TimerId id = 0;
};

// What a worker read about us from the ledger (cached for kSelfTtlMs).
struct SelfInfo {
  ledger::ProviderRecord record;
  std::vector<ledger::Attestation> attestations;
  int64_t readAtMs = 0;
};

class BidEngine::Impl {
 public:
  Impl(BidEngineOptions options, std::unique_ptr<LivePricing> pricing);
  ~Impl();

  Status start();
  void stop();
  BidEngineStatus status();
  void leaseEnded(const std::string& lease);
  bool waitIdle(uint64_t seq, std::chrono::milliseconds timeout);

  BidEngineOptions o_;
  const std::string self_;
  std::unique_ptr<LivePricing> pricing;

 private:
  enum class St { kEvaluating, kWaiting, kBid, kLease };
  struct Track {
    St st = St::kEvaluating;
    ledger::Capacity need;
    std::string bid, lease;
    bool cancelled = false;  // the order ended while we were evaluating it
    bool retry = false;      // re-evaluation after waiting for capacity (not counted twice)
    bool inFlight = false;   // an evaluation (fetch, pricing, submit) is running for it
    bool counted = false;    // included in counts_ (set by setState)
    uint64_t seq = 0;        // the event that started the evaluation
  };
  struct Fetched {
    Result<ledger::Order> order = notFound("");
    std::vector<ledger::Bid> ours;
    Result<SelfInfo> self = notFound("");
  };
  struct BidOutcome {
    std::string bid;  // "" = no bid; then reason/message say why
    ledger::Prices price;
    std::string reason, message;
  };

  // engine_impl.cpp
  void watch(uint64_t from);
  void postStrand(std::function<void()> fn);
  void postWork(std::function<void()> fn);
  void schedulePricingPoll();
  void saveCursor();
  void notifyIdle();
  Status rebuild(uint64_t& cursor, std::vector<std::string>& openOrders);
  Result<SelfInfo> selfInfo(bool fresh);

  // engine_orders.cpp [strand]
  void apply(const ledger::Event& e);
  void evaluate(const std::string& order, uint64_t seq, bool retry, bool checkOurs,
                std::optional<ledger::Order> known);
  void onFetched(const std::string& order, Fetched f);
  void onBidOutcome(const std::string& order, BidOutcome r);
  void endOrder(const std::string& order);
  void toLease(const std::string& order, const std::string& lease);
  void endLease(const std::string& lease);  // frees a lease's capacity (escrow closed, or ended)
  void release(const std::string& order);
  void tryWaiting();
  void finishEvaluation(Track& t);
  void setState(Track& t, St st);
  void eraseTrack(const std::string& order);
  void skip(const std::string& order, const std::string& reason, const std::string& detail);
  // {reason, detail} when the order asks for attributes or attestations we lack; {"", ""} else.
  std::pair<std::string, std::string> mismatch(const ledger::Order& order,
                                               const SelfInfo& self) const;
  // [worker]
  Fetched fetch(const std::string& order, bool checkOurs, std::optional<ledger::Order> known);
  BidOutcome priceAndBid(const ledger::Order& order);

  // [any]
  std::unique_ptr<MetricsRegistry> ownMetrics_;
  MetricsRegistry* metrics_;
  Counter* ordersSeen_;
  Counter* bidsPlaced_;
  Counter* bidsWon_;
  Counter* bidsRenewed_;
  std::set<std::string> renewals_;  // orders being evaluated again after our bid expired
  Histogram* pricingTime_;
  Gauge* openBidsGauge_;
  Gauge* leasesGauge_;
  std::mutex skipMu_;
  std::map<std::string, Counter*> skipped_;
  std::unique_ptr<ledger::AccountSubmitter> submitter_;  // the default SubmitFn's (pipelined)
  std::mutex selfMu_;
  std::optional<SelfInfo> selfCache_;
  std::atomic<bool> selfDirty_{true};
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> inflight_{0};  // evaluations + queued event batches
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  std::shared_ptr<TimerState> timer_ = std::make_shared<TimerState>();
  std::mutex idleMu_;
  std::condition_variable idleCv_;
  uint64_t idleApplied_ = 0;
  size_t idleEvaluating_ = 0;
  std::atomic<uint64_t> replayUntil_{0};  // events up to here may be for orders we bid on
  std::atomic<bool> started_{false};

  // [strand]
  CapacityBook book_;
  std::map<std::string, Track> tracks_;            // by order id
  std::map<std::string, std::string> leaseOrder_;  // lease (= escrow) id -> order id
  std::set<std::string> openOrders_;
  std::deque<std::string> waiting_;  // orders waiting for capacity, oldest first
  std::multiset<uint64_t> evaluatingSeqs_;
  size_t counts_[4] = {0, 0, 0, 0};  // tracks per St
  size_t evaluating_ = 0;            // tracks with inFlight
  uint64_t applied_ = 0;
  uint64_t savedCursor_ = 0;

  std::thread watcher_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<WorkerPool> strand_;
};

}  // namespace mercato::provider::bidengine
