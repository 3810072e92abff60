// BidEngine::Impl: applying ledger events and evaluating orders (see engine_impl.hpp for who
// owns what). Every function here runs on the strand except fetch() and priceAndBid(), which
// run on the workers and only read the ledger, price and submit.
#include <spdlog/spdlog.h>

#include "provider/bidengine/engine_impl.hpp"

namespace mercato::provider::bidengine {

namespace {

std::string field(const nlohmann::json& data, const char* key) {
  auto it = data.find(key);
  return it != data.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The order as the order.created event describes it (the ledger includes requirements and caps),
// so a live order costs no extra ledger read. nullopt when the event lacks them.
std::optional<ledger::Order> orderFromEvent(const ledger::Event& e) {
  const auto& d = e.data;
  if (!d.contains("requirements") || !d.contains("maxPrice") || !d.contains("expiresAt") ||
      !d["expiresAt"].is_number_integer())
    return std::nullopt;
  auto req = ledger::requirementsFromJson(d["requirements"], "event.requirements");
  auto caps = ledger::priceCapsFromJson(d["maxPrice"], "event.maxPrice");
  if (!req.isOk() || !caps.isOk()) return std::nullopt;
  ledger::Order o;
  o.id = field(d, "order");
  o.publisher = field(d, "publisher");
  o.requirements = std::move(*req);
  o.maxPrice = *caps;
  o.expiresAt = d["expiresAt"].get<int64_t>();
  o.createdAt = e.time;
  return o;
}

}  // namespace

void BidEngine::Impl::apply(const ledger::Event& e) {
  const std::string& type = e.type;
  if (type.rfind("order.", 0) == 0) {
    const std::string order = field(e.data, "order");
    if (type == "order.created") {
      openOrders_.insert(order);
      ordersSeen_->inc();
      evaluate(order, e.seq, false, e.seq <= replayUntil_, orderFromEvent(e));
      return;
    }
    openOrders_.erase(order);
    if (type == "order.matched" && field(e.data, "provider") == self_)
      toLease(order, field(e.data, "lease"));
    else if (type == "order.matched" || type == "order.closed" || type == "order.expired")
      endOrder(order);
    return;
  }
  if (type.rfind("bid.", 0) == 0) {
    if (field(e.data, "provider") != self_) return;
    const std::string order = field(e.data, "order");
    if (type == "bid.won") {
      bidsWon_->inc();
    } else if (type == "bid.expired" && openOrders_.count(order)) {
      // The order outlived our bid: renew it (a fresh evaluation, at today's prices).
      endOrder(order);
      if (!tracks_.count(order)) {
        bidsRenewed_->inc();
        renewals_.insert(order);
        evaluate(order, e.seq, false, /*checkOurs=*/true, std::nullopt);
      }
    } else if (type == "bid.lost" || type == "bid.closed" || type == "bid.expired") {
      endOrder(order);
    } else if (type == "bid.created" && !tracks_.count(order)) {
      spdlog::warn(
          "bidengine: bid {} on order {} was not placed by this engine (another "
          "process with this provider key?)",
          field(e.data, "bid"), order);
    }
    return;
  }
  if (type == "lease.created") {
    if (field(e.data, "provider") == self_) toLease(field(e.data, "order"), field(e.data, "lease"));
    return;
  }
  if (type == "escrow.closed") {
    if (field(e.data, "provider") == self_) endLease(field(e.data, "escrow"));
    return;
  }
  if ((type.rfind("auditor.", 0) == 0 || type.rfind("provider.", 0) == 0) &&
      field(e.data, "provider") == self_)
    selfDirty_ = true;
}

void BidEngine::Impl::setState(Track& t, St st) {
  if (t.counted) --counts_[static_cast<int>(t.st)];
  t.st = st;
  t.counted = true;
  ++counts_[static_cast<int>(st)];
}

void BidEngine::Impl::eraseTrack(const std::string& order) {
  auto it = tracks_.find(order);
  if (it == tracks_.end()) return;
  if (it->second.counted) --counts_[static_cast<int>(it->second.st)];
  if (it->second.inFlight) finishEvaluation(it->second);
  tracks_.erase(it);
}

void BidEngine::Impl::evaluate(const std::string& order, uint64_t seq, bool retry, bool checkOurs,
                               std::optional<ledger::Order> known) {
  if (stopping_ || order.empty()) return;
  auto [it, fresh] = tracks_.try_emplace(order);
  Track& t = it->second;
  if (!fresh && !(retry && t.st == St::kWaiting)) return;  // already handled
  setState(t, St::kEvaluating);
  t.retry = retry;
  t.cancelled = false;
  t.inFlight = true;
  t.seq = seq;
  ++evaluating_;
  evaluatingSeqs_.insert(seq);
  inflight_.fetch_add(1);
  postWork([this, order, checkOurs, known = std::move(known)]() mutable {
    Fetched f = fetch(order, checkOurs, std::move(known));
    postStrand([this, order, f = std::move(f)]() mutable {
      onFetched(order, std::move(f));
      notifyIdle();
    });
  });
}

void BidEngine::Impl::finishEvaluation(Track& t) {
  if (!t.inFlight) return;
  t.inFlight = false;
  --evaluating_;
  evaluatingSeqs_.erase(evaluatingSeqs_.find(t.seq));
  inflight_.fetch_sub(1);
  if (evaluating_ == 0) saveCursor();
}

BidEngine::Impl::Fetched BidEngine::Impl::fetch(const std::string& order, bool checkOurs,
                                                std::optional<ledger::Order> known) {
  Fetched f;
  f.order = known ? Result<ledger::Order>(std::move(*known)) : o_.ledger->order(order);
  if (f.order.isOk() && checkOurs) {
    ledger::BidFilter bf;
    bf.order = order;
    bf.provider = self_;
    auto ours = o_.ledger->bids(bf);
    if (!ours.isOk())
      f.order = ours.status().withContext("our bids on " + order);
    else
      f.ours = std::move(*ours);
  }
  f.self = selfInfo(false);
  return f;
}

std::pair<std::string, std::string> BidEngine::Impl::mismatch(const ledger::Order& o,
                                                              const SelfInfo& s) const {
  for (const auto& [k, v] : o.requirements.attributes) {
    auto it = s.record.attributes.find(k);
    if (it == s.record.attributes.end() || it->second != v)
      return {"attributes", "needs " + k + "=" + v + ", we have " +
                                (it == s.record.attributes.end() ? "none" : k + "=" + it->second)};
  }
  for (const auto& req : o.requirements.signedBy) {
    const ledger::Attestation* a = nullptr;
    for (const auto& x : s.attestations)
      if (x.auditor == req.auditor) a = &x;
    if (!a) return {"auditor", "auditor " + req.auditor + " has attested nothing about us"};
    for (const auto& [k, v] : req.attributes) {
      auto it = a->attributes.find(k);
      if (it == a->attributes.end() || it->second != v)
        return {"auditor", "auditor " + req.auditor + " has not attested " + k + "=" + v};
    }
  }
  return {"", ""};
}

void BidEngine::Impl::onFetched(const std::string& order, Fetched f) {
  const bool renewal = renewals_.erase(order) > 0;
  auto it = tracks_.find(order);
  if (it == tracks_.end()) return;
  Track& t = it->second;
  auto drop = [&](const std::string& reason, const std::string& detail) {
    if (!reason.empty()) skip(order, reason, detail);
    const bool freed = book_.release(order);  // a retry's reservation, taken by tryWaiting()
    eraseTrack(order);
    if (freed) tryWaiting();
  };
  if (t.st == St::kLease) return finishEvaluation(t);  // accepted while we were reading
  if (t.cancelled || stopping_) return drop("", "");
  if (!f.order.isOk()) return drop("ledger_error", f.order.status().message());
  const ledger::Order& o = *f.order;
  if (o.state != ledger::OrderState::kOpen || o.expiresAt <= o_.clock->nowMillis())
    return drop("order_not_open", "order is " + ledger::orderStateName(o.state));
  for (const auto& b : f.ours) {
    if (b.state != ledger::BidState::kOpen) continue;
    // Ours from before a restart (the rebuild normally has it already): hold its capacity.
    finishEvaluation(t);
    setState(t, St::kBid);
    t.bid = b.id;
    t.need = o.requirements.total();
    book_.force(order, t.need);
    skip(order, "already_bid", "bid " + b.id + " is open");
    return;
  }
  // One bid per order, except a renewal: a replayed order whose bid of ours ended stays so.
  if (!f.ours.empty() && !renewal)
    return drop("already_bid", "bid " + f.ours.front().id + " ended");
  if (!f.self.isOk()) return drop("ledger_error", f.self.status().message());
  if (!f.self->record.active) return drop("provider_inactive", "not registered on the ledger");
  if (auto [reason, detail] = mismatch(o, *f.self); !reason.empty()) return drop(reason, detail);
  t.need = o.requirements.total();
  if (std::string s = CapacityBook(o_.capacity).shortfall(t.need); !s.empty())
    return drop("capacity", "more than all our capacity: " + s);
  // A retry arrives with its reservation (tryWaiting() took it, so a newer order cannot overtake
  // one that waited); a first evaluation reserves now or waits in line.
  if (std::string s = book_.shortfall(t.need);
      !book_.holds(order) && (!s.empty() || !book_.reserve(order, t.need))) {
    if (!t.retry) skip(order, "capacity", s + " (waiting for a release)");
    finishEvaluation(t);
    setState(t, St::kWaiting);
    waiting_.push_back(order);
    return;
  }
  postWork([this, order, o]() {
    BidOutcome r = priceAndBid(o);
    postStrand([this, order, r = std::move(r)]() mutable {
      onBidOutcome(order, std::move(r));
      notifyIdle();
    });
  });
}

BidEngine::Impl::BidOutcome BidEngine::Impl::priceAndBid(const ledger::Order& o) {
  BidOutcome r;
  std::shared_ptr<PricingStrategy> strategy = pricing->current();
  PricingInput in{o.id, o.publisher, o.requirements.resources, o.maxPrice};
  const auto t0 = std::chrono::steady_clock::now();
  auto price = strategy->price(in);
  pricingTime_->observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (!price.isOk()) {
    r.reason = pricingFailureReason(price.status());
    r.message = price.status().message();
    return r;
  }
  if (std::string over = ledger::priceOverCaps(*price, o.maxPrice); !over.empty()) {
    r.reason = "over_max_price";
    r.message = std::string(strategy->name()) + " price: " + over;
    return r;
  }
  auto nonce = o_.submit(ledger::TxKind::kBidCreate,
                         ledger::BidCreateBody{o.id, *price, o_.config.bidTtlMs});
  if (!nonce.isOk()) {
    r.reason = nonce.status().code() == Code::kAlreadyExists ? "already_bid" : "submit_rejected";
    r.message = nonce.status().message();
    return r;
  }
  r.bid = ledger::bidIdFor(self_, *nonce);
  r.price = *price;
  return r;
}

void BidEngine::Impl::onBidOutcome(const std::string& order, BidOutcome r) {
  auto it = tracks_.find(order);
  if (it == tracks_.end()) return;
  Track& t = it->second;
  finishEvaluation(t);
  if (r.bid.empty()) {
    skip(order, r.reason, r.message);
    if (t.st != St::kLease) release(order);
    return;
  }
  bidsPlaced_->inc();
  spdlog::debug("bidengine: bid {} on order {}: {}", r.bid, order, ledger::toJson(r.price).dump());
  if (t.st == St::kLease) {  // the publisher accepted before our receipt came back
    t.bid = r.bid;
    return;
  }
  if (t.cancelled) {  // the order ended meantime; its reservation is already released
    eraseTrack(order);
    return;
  }
  setState(t, St::kBid);
  t.bid = r.bid;
}

void BidEngine::Impl::endOrder(const std::string& order) {
  auto it = tracks_.find(order);
  if (it == tracks_.end()) return;
  Track& t = it->second;
  if (t.st == St::kLease) return;  // a lease outlives its order
  if (t.inFlight) {
    t.cancelled = true;
    if (book_.release(order)) tryWaiting();
    return;
  }
  release(order);
}

void BidEngine::Impl::endLease(const std::string& lease) {
  auto it = leaseOrder_.find(lease);
  if (it == leaseOrder_.end()) return;
  const std::string order = it->second;
  leaseOrder_.erase(it);
  release(order);
}

void BidEngine::Impl::toLease(const std::string& order, const std::string& lease) {
  if (order.empty() || lease.empty()) return;
  auto [it, fresh] = tracks_.try_emplace(order);
  Track& t = it->second;
  if (!fresh && t.st == St::kLease) return;
  const bool held = book_.holds(order);
  setState(t, St::kLease);
  t.cancelled = false;
  t.lease = lease;
  leaseOrder_[lease] = order;
  if (held) return;
  // We hold no reservation for it (the order ended locally first, or the engine restarted):
  // read its size and take the capacity, whatever is free — the lease exists.
  inflight_.fetch_add(1);
  postWork([this, order, lease] {
    auto o = o_.ledger->order(order);
    postStrand([this, order, lease, o = std::move(o)] {
      inflight_.fetch_sub(1);
      auto it = tracks_.find(order);
      if (o.isOk() && it != tracks_.end() && it->second.lease == lease) {
        it->second.need = o->requirements.total();
        book_.force(order, it->second.need);
      } else if (!o.isOk()) {
        spdlog::warn("bidengine: lease {}: reading order {}: {}", lease, order,
                     o.status().message());
      }
      notifyIdle();
    });
  });
}

void BidEngine::Impl::release(const std::string& order) {
  const bool freed = book_.release(order);
  eraseTrack(order);
  if (freed) tryWaiting();
}

void BidEngine::Impl::tryWaiting() {
  if (stopping_ || waiting_.empty()) return;
  // In arrival order, each waiting order that fits reserves now, before its re-evaluation.
  std::deque<std::string> keep;
  std::vector<std::string> retry;
  for (auto& order : waiting_) {
    auto it = tracks_.find(order);
    if (it == tracks_.end() || it->second.st != St::kWaiting) continue;  // ended meanwhile
    if (book_.reserve(order, it->second.need)) {
      retry.push_back(std::move(order));
    } else {
      keep.push_back(std::move(order));
    }
  }
  waiting_ = std::move(keep);
  for (const auto& order : retry) evaluate(order, applied_ + 1, true, false, std::nullopt);
}

void BidEngine::Impl::skip(const std::string& order, const std::string& reason,
                           const std::string& detail) {
  Counter* c;
  {
    std::lock_guard lock(skipMu_);
    Counter*& slot = skipped_[reason];
    if (!slot)
      slot = metrics_->counter("mercato_bidengine_bids_skipped_total{reason=\"" + reason + "\"}",
                               "Orders not bid on, by reason");
    c = slot;
  }
  c->inc();
  if (reason == "capacity" || reason == "attributes" || reason == "auditor" ||
      reason == "already_bid" || reason == "order_not_open")
    spdlog::debug("bidengine: no bid on order {}: {}: {}", order, reason, detail);
  else
    spdlog::warn("bidengine: no bid on order {}: {}: {}", order, reason, detail);
}

}  // namespace mercato::provider::bidengine
