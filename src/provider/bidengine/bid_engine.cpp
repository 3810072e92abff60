#include "provider/bidengine/bid_engine.hpp"

#include <future>

#include <spdlog/spdlog.h>

#include "provider/bidengine/engine_impl.hpp"

namespace mercato::provider::bidengine {

using nlohmann::json;

BidEngine::BidEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BidEngine::~BidEngine() { stop(); }

Result<std::unique_ptr<BidEngine>> BidEngine::create(BidEngineOptions o) {
  if (!o.ledger || !o.clock || !o.identity)
    return invalidArgument("bidengine: ledger, clock and identity are required");
  if (o.capacity.cpu <= 0 || o.capacity.memory <= 0)
    return invalidArgument("bidengine: capacity cpu and memory must be positive");
  ASSIGN_OR_RETURN(auto pricing, LivePricing::create(o.config, o.defaultRates));
  auto impl = std::make_unique<Impl>(std::move(o), std::move(pricing));
  return std::unique_ptr<BidEngine>(new BidEngine(std::move(impl)));
}

Status BidEngine::start() { return impl_->start(); }
void BidEngine::stop() { impl_->stop(); }
BidEngineStatus BidEngine::status() { return impl_->status(); }
void BidEngine::leaseEnded(const std::string& lease) { impl_->leaseEnded(lease); }
Status BidEngine::reloadPricing() { return impl_->pricing->poll(); }
bool BidEngine::waitIdle(uint64_t seq, std::chrono::milliseconds timeout) {
  return impl_->waitIdle(seq, timeout);
}

json toJson(const BidEngineStatus& s) {
  json reservations = json::array();
  for (const auto& r : s.reservations) {
    json j = {{"order", r.order}, {"state", r.state}, {"resources", ledger::toJson(r.resources)}};
    if (!r.bid.empty()) j["bid"] = r.bid;
    if (!r.lease.empty()) j["lease"] = r.lease;
    reservations.push_back(std::move(j));
  }
  json skipped = json::object();
  for (const auto& [reason, n] : s.skipped) skipped[reason] = n;
  json j = {{"running", s.running},
            {"cursor", s.cursor},
            {"strategy", s.strategy},
            {"configGeneration", s.configGeneration},
            {"openOrders", s.openOrders},
            {"evaluating", s.evaluating},
            {"waitingForCapacity", s.waitingForCapacity},
            {"openBids", s.openBids},
            {"leases", s.leases},
            {"capacity", ledger::toJson(s.capacity)},
            {"reserved", ledger::toJson(s.reserved)},
            {"available", ledger::toJson(s.available)},
            {"ordersSeen", s.ordersSeen},
            {"bidsPlaced", s.bidsPlaced},
            {"bidsWon", s.bidsWon},
            {"bidsRenewed", s.bidsRenewed},
            {"skipped", std::move(skipped)},
            {"reservations", std::move(reservations)}};
  if (!s.configError.empty()) j["configError"] = s.configError;
  return j;
}

}  // namespace mercato::provider::bidengine
