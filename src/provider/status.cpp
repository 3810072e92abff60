// GET /status: the provider's aggregate view (cluster inventory and leases, the bid engine,
// the manifest service). Public: it reveals totals, never a deployment's owner or manifest.
#include <algorithm>
#include <set>

#include "provider/bidengine/bid_engine.hpp"
#include "provider/provider.hpp"

namespace mercato::provider {

using nlohmann::json;

json Provider::statusJson() {
  json out = {{"provider", address_}, {"time", opts_.clock->nowMillis()}};

  // Manifest service: what was received and what is running.
  size_t active = 0, suspended = 0, removed = 0;
  std::set<std::string> deployedEscrows;
  auto all = store_->deployments(true);
  if (all.isOk()) {
    for (const auto& d : *all) {
      if (d.state == "removed") {
        ++removed;
        continue;
      }
      d.state == "suspended" ? ++suspended : ++active;
      deployedEscrows.insert(d.escrowId);
    }
  }
  const ledger::Capacity used = peakInUse(all).valueOr(ledger::Capacity{});
  const int64_t usedCpu = used.cpu, usedMem = used.memory;
  out["manifests"] = {{"received", active + suspended + removed + pendingIntakes_.load()},
                      {"pending", pendingIntakes_.load()},
                      {"active", active},
                      {"suspended", suspended},
                      {"removed", removed}};

  // Cluster: leases won on the ledger, and the inventory at peak.
  size_t activeLeases = 0, awaitingManifest = 0;
  if (auto leases = opts_.ledger->leases({"", address_, 1000}); leases.isOk()) {
    for (const auto& l : *leases) {
      auto e = opts_.ledger->escrow(l.id);
      if (!e.isOk() || e->state == ledger::EscrowState::kClosed) continue;
      ++activeLeases;
      if (!deployedEscrows.count(l.id)) ++awaitingManifest;
    }
  }
  const auto& cap = opts_.config.capacity;
  json engine = {{"enabled", false}};
  int64_t reservedCpu = 0, reservedMem = 0;
  if (bidEngine_) {
    bidengine::BidEngineStatus s = bidEngine_->status();
    engine = bidengine::toJson(s);
    engine["enabled"] = true;
    reservedCpu = s.reserved.cpu;
    reservedMem = s.reserved.memory;
  }
  // Deployments and the bid engine's reservations overlap for leases that already run; the
  // larger of the two is what is spoken for.
  const int64_t allocCpu = std::max(usedCpu, reservedCpu);
  const int64_t allocMem = std::max(usedMem, reservedMem);
  out["cluster"] = {
      {"backend", opts_.config.backend},
      {"activeLeases", activeLeases},
      {"leasesAwaitingManifest", awaitingManifest},
      {"deployments", active + suspended},
      {"capacity", {{"cpu", cap.cpu}, {"memory", cap.memory}, {"storage", cap.storage}}},
      {"allocated", {{"cpu", allocCpu}, {"memory", allocMem}}},
      {"available",
       {{"cpu", std::max<int64_t>(0, cap.cpu - allocCpu)},
        {"memory", std::max<int64_t>(0, cap.memory - allocMem)}}},
  };
  out["bidEngine"] = engine;
  return out;
}

}  // namespace mercato::provider
