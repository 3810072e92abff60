#include "provider/bidengine/engine_impl.hpp"

#include <future>

#include <spdlog/spdlog.h>

namespace mercato::provider::bidengine {

namespace {
constexpr int64_t kSelfTtlMs = 5'000;    // registry entry + attestations cache
constexpr size_t kListLimit = 100'000;   // rebuild reads (bids, leases, escrows, open orders)
constexpr size_t kQueueLimit = 1 << 22;  // queues are bounded by maxInFlight in practice
}  // namespace

BidEngine::Impl::Impl(BidEngineOptions options, std::unique_ptr<LivePricing> p)
    : o_(std::move(options)),
      self_(o_.identity->address()),
      pricing(std::move(p)),
      book_(o_.capacity) {
  if (!o_.metrics) {
    ownMetrics_ = std::make_unique<MetricsRegistry>();
    o_.metrics = ownMetrics_.get();
  }
  metrics_ = o_.metrics;
  ordersSeen_ = metrics_->counter("mercato_bidengine_orders_seen_total",
                                  "Orders seen open on the ledger (created or found at start)");
  bidsPlaced_ =
      metrics_->counter("mercato_bidengine_bids_placed_total", "Bids accepted by the ledger");
  bidsWon_ = metrics_->counter("mercato_bidengine_bids_won_total", "Our bids that became leases");
  bidsRenewed_ = metrics_->counter("mercato_bidengine_bids_renewed_total",
                                   "Orders evaluated again because our bid expired before them");
  pricingTime_ = metrics_->histogram("mercato_bidengine_pricing_seconds",
                                     "Time to price one order (strategy call, scripts included)");
  openBidsGauge_ = metrics_->gauge("mercato_bidengine_open_bids", "Our bids open on the ledger");
  leasesGauge_ =
      metrics_->gauge("mercato_bidengine_leases", "Our leases whose escrow is not closed");
  if (!o_.submit) {
    // create() checked ledger and identity: the default submitter can exist from the start.
    submitter_ = std::make_unique<ledger::AccountSubmitter>(*o_.ledger, *o_.identity, o_.chainId);
    o_.submit = [s = submitter_.get()](ledger::TxKind k, ledger::TxBody b) -> Result<uint64_t> {
      uint64_t nonce = 0;
      RETURN_IF_ERROR(s->submit(k, b, &nonce).status());
      return nonce;
    };
  }
}

BidEngine::Impl::~Impl() { stop(); }

void BidEngine::Impl::postStrand(std::function<void()> fn) {
  if (!strand_->post(std::move(fn))) spdlog::error("bidengine: strand queue full, job dropped");
}

void BidEngine::Impl::postWork(std::function<void()> fn) {
  if (!workers_->post(std::move(fn))) spdlog::error("bidengine: worker queue full, job dropped");
}

Result<SelfInfo> BidEngine::Impl::selfInfo(bool fresh) {
  const int64_t now = o_.clock->nowMillis();
  {
    std::lock_guard lock(selfMu_);
    if (!fresh && !selfDirty_ && selfCache_ && now - selfCache_->readAtMs < kSelfTtlMs)
      return *selfCache_;
  }
  selfDirty_ = false;
  SelfInfo s;
  ASSIGN_OR_RETURN(s.record, o_.ledger->provider(self_));
  ASSIGN_OR_RETURN(s.attestations, o_.ledger->attestations(self_));
  s.readAtMs = now;
  std::lock_guard lock(selfMu_);
  selfCache_ = s;
  return s;
}

Status BidEngine::Impl::rebuild(uint64_t& cursor, std::vector<std::string>& openOrders) {
  cursor = 0;
  if (o_.loadCursor) {
    ASSIGN_OR_RETURN(cursor, o_.loadCursor());
  }
  ASSIGN_OR_RETURN(ledger::LedgerInfo info, o_.ledger->info());
  if (cursor > info.eventSeq) {
    spdlog::warn(
        "bidengine: saved cursor {} is past the ledger's last event {} (a new ledger?); "
        "starting at its head",
        cursor, info.eventSeq);
    cursor = info.eventSeq;
  }
  if (cursor == 0) cursor = info.eventSeq;  // first start: the open-order scan covers the past
  replayUntil_ = info.eventSeq;

  ledger::BidFilter bf;
  bf.provider = self_;
  bf.state = ledger::BidState::kOpen;
  bf.limit = kListLimit;
  ASSIGN_OR_RETURN(auto bids, o_.ledger->bids(bf));
  for (const auto& b : bids) {
    ASSIGN_OR_RETURN(ledger::Order order, o_.ledger->order(b.order));
    Track& t = tracks_[b.order];
    setState(t, St::kBid);
    t.bid = b.id;
    t.need = order.requirements.total();
    book_.force(b.order, t.need);
  }
  ledger::EscrowFilter ef;
  ef.provider = self_;
  ASSIGN_OR_RETURN(auto escrows, o_.ledger->escrows(ef));
  std::set<std::string> live;
  for (const auto& e : escrows)
    if (e.state != ledger::EscrowState::kClosed) live.insert(e.id);
  ledger::LeaseFilter lf;
  lf.provider = self_;
  lf.limit = kListLimit;
  ASSIGN_OR_RETURN(auto leases, o_.ledger->leases(lf));
  for (const auto& l : leases) {
    if (!live.count(l.id) || (o_.leaseEndedLocally && o_.leaseEndedLocally(l.id))) continue;
    ASSIGN_OR_RETURN(ledger::Order order, o_.ledger->order(l.order));
    Track& t = tracks_[l.order];
    book_.release(l.order);
    setState(t, St::kLease);
    t.bid = l.bid;
    t.lease = l.id;
    t.need = order.requirements.total();
    book_.force(l.order, t.need);
    leaseOrder_[l.id] = l.order;
  }
  ledger::OrderFilter of;
  of.state = ledger::OrderState::kOpen;
  of.limit = kListLimit;
  ASSIGN_OR_RETURN(auto open, o_.ledger->orders(of));
  for (auto it = open.rbegin(); it != open.rend(); ++it) openOrders.push_back(it->id);
  spdlog::info("bidengine: resuming after event {}: {} open bids, {} leases, {} open orders",
               cursor, bids.size(), leaseOrder_.size(), open.size());
  return Status();
}

Status BidEngine::Impl::start() {
  if (started_.exchange(true)) return failedPrecondition("bidengine: already started");
  uint64_t cursor = 0;
  std::vector<std::string> open;
  RETURN_IF_ERROR(rebuild(cursor, open));
  applied_ = savedCursor_ = cursor;
  {
    std::lock_guard lock(idleMu_);
    idleApplied_ = cursor;
  }
  strand_ = std::make_unique<WorkerPool>(1, kQueueLimit);
  workers_ = std::make_unique<WorkerPool>(o_.config.workers, kQueueLimit);
  inflight_.fetch_add(1);  // the scan below: waitIdle() must not see an idle engine before it
  postStrand([this, open = std::move(open), cursor] {
    for (const auto& id : open) {
      if (tracks_.count(id)) continue;
      openOrders_.insert(id);
      ordersSeen_->inc();
      evaluate(id, cursor + 1, /*retry=*/false, /*checkOurs=*/true, std::nullopt);
    }
    inflight_.fetch_sub(1);
    notifyIdle();
  });
  watcher_ = std::thread([this, cursor] { watch(cursor); });
  schedulePricingPoll();
  return Status();
}

void BidEngine::Impl::stop() {
  if (!started_ || stopping_.exchange(true)) return;
  {
    std::lock_guard lock(timer_->mu);
    timer_->stopping = true;
    if (timer_->id) o_.clock->cancel(timer_->id);
  }
  {
    std::lock_guard lock(wake_->mu);
    wake_->stop = true;
  }
  wake_->cv.notify_all();
  if (watcher_.joinable()) watcher_.join();
  // In-flight evaluations finish (bounded by the script timeout and the ledger); new ones are
  // not started once stopping_ is set. Then the pools drain and join.
  {
    std::unique_lock lock(idleMu_);
    idleCv_.wait(lock, [&] { return inflight_.load() == 0; });
  }
  workers_.reset();
  strand_.reset();
  if (o_.saveCursor && applied_ > savedCursor_) saveCursor();
}

void BidEngine::Impl::schedulePricingPoll() {
  if (!pricing->watched()) return;
  std::lock_guard lock(timer_->mu);
  if (timer_->stopping) return;
  auto state = timer_;
  timer_->id = o_.clock->callAfter(Millis(o_.config.configPollMs), [this, state] {
    std::lock_guard lock(state->mu);
    if (state->stopping) return;
    // Posting while holding the lock: stop() sets `stopping` under it before the pools go.
    postWork([this] {
      (void)pricing->poll();
      schedulePricingPoll();
    });
  });
}

void BidEngine::Impl::watch(uint64_t from) {
  uint64_t fetched = from;
  auto wake = wake_;
  while (true) {
    {
      std::unique_lock lock(wake->mu);
      if (wake->stop) return;
      // Backpressure: don't read more while too much is queued or being evaluated.
      if (inflight_.load() >= o_.maxInFlight) {
        wake->freed = false;
        wake->cv.wait(lock, [&] { return wake->stop || wake->freed; });
        continue;
      }
    }
    auto events = o_.ledger->events(fetched, o_.eventBatch, 0);
    if (!events.isOk()) {
      // The ledger may be a remote host that is restarting: retry after a second.
      spdlog::warn("bidengine: reading ledger events after {}: {}", fetched,
                   events.status().message());
      std::unique_lock lock(wake->mu);
      wake->cv.wait_for(lock, std::chrono::seconds(1), [&] { return wake->stop; });
      continue;
    }
    if (events->empty()) {
      std::unique_lock lock(wake->mu);
      if (!wake->armed) {
        wake->armed = true;
        wake->eventReady = false;
        lock.unlock();
        o_.ledger->notifyEvents(fetched, o_.longPollMs, [wake] { wake->set(&Wake::eventReady); });
        lock.lock();
      }
      wake->cv.wait(lock, [&] { return wake->stop || wake->eventReady; });
      wake->eventReady = false;
      continue;
    }
    fetched = events->back().seq;
    inflight_.fetch_add(1);
    postStrand([this, batch = std::move(*events)] {
      for (const auto& e : batch) {
        apply(e);
        applied_ = e.seq;
      }
      inflight_.fetch_sub(1);
      saveCursor();
      notifyIdle();
    });
  }
}

void BidEngine::Impl::saveCursor() {
  uint64_t safe = applied_;
  if (!evaluatingSeqs_.empty()) safe = std::min(safe, *evaluatingSeqs_.begin() - 1);
  if (!o_.saveCursor || safe <= savedCursor_) return;
  if (Status s = o_.saveCursor(safe); !s.isOk()) {
    spdlog::warn("bidengine: saving the event cursor: {}", s.message());
    return;
  }
  savedCursor_ = safe;
}

void BidEngine::Impl::notifyIdle() {
  const size_t evaluating = evaluating_;
  openBidsGauge_->set(static_cast<int64_t>(counts_[static_cast<int>(St::kBid)]));
  leasesGauge_->set(static_cast<int64_t>(counts_[static_cast<int>(St::kLease)]));
  {
    std::lock_guard lock(idleMu_);
    idleApplied_ = applied_;
    idleEvaluating_ = evaluating;
  }
  idleCv_.notify_all();
  if (inflight_.load() < o_.maxInFlight) wake_->set(&Wake::freed);
}

void BidEngine::Impl::leaseEnded(const std::string& lease) {
  if (!started_ || stopping_) return;
  inflight_.fetch_add(1);
  postStrand([this, lease] {
    endLease(lease);
    inflight_.fetch_sub(1);
    notifyIdle();
  });
}

bool BidEngine::Impl::waitIdle(uint64_t seq, std::chrono::milliseconds timeout) {
  std::unique_lock lock(idleMu_);
  return idleCv_.wait_for(lock, timeout, [&] {
    return idleApplied_ >= seq && idleEvaluating_ == 0 && inflight_.load() == 0;
  });
}

BidEngineStatus BidEngine::Impl::status() {
  BidEngineStatus s;
  s.ordersSeen = ordersSeen_->value();
  s.bidsPlaced = bidsPlaced_->value();
  s.bidsWon = bidsWon_->value();
  s.bidsRenewed = bidsRenewed_->value();
  {
    std::lock_guard lock(skipMu_);
    for (const auto& [reason, c] : skipped_) s.skipped[reason] = c->value();
  }
  s.strategy = pricing->currentConfig().strategy;
  s.configGeneration = pricing->generation();
  s.configError = pricing->lastError();
  s.capacity = o_.capacity;
  if (!started_ || stopping_) {
    s.available = o_.capacity;
    return s;
  }
  auto out = std::make_shared<BidEngineStatus>(s);
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  postStrand([this, out, done] {
    BidEngineStatus& r = *out;
    r.running = true;
    r.cursor = applied_;
    r.openOrders = openOrders_.size();
    for (const auto& [order, t] : tracks_) {
      const char* state = t.st == St::kEvaluating ? "evaluating"
                          : t.st == St::kWaiting  ? "waiting"
                          : t.st == St::kBid      ? "bid"
                                                  : "lease";
      r.evaluating += t.st == St::kEvaluating;
      r.waitingForCapacity += t.st == St::kWaiting;
      r.openBids += t.st == St::kBid;
      r.leases += t.st == St::kLease;
      if (book_.holds(order)) r.reservations.push_back({order, state, t.bid, t.lease, t.need});
    }
    r.reserved = book_.reserved();
    r.available = book_.free();
    done->set_value();
  });
  // The strand answers within one job; a stuck strand must not hang GET /status.
  if (fut.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    spdlog::warn("bidengine: status: the engine did not answer within 5 s");
    s.running = true;
    return s;
  }
  return *out;
}

}  // namespace mercato::provider::bidengine
