#include "publisher/selection.hpp"

#include <algorithm>

#include "common/strings.hpp"
#include "common/units.hpp"

namespace mercato::publisher {

Result<Strategy> parseStrategy(std::string_view name) {
  if (name == "cheapest") return Strategy::kCheapest;
  if (name == "latency") return Strategy::kLatency;
  if (name == "manual") return Strategy::kManual;
  return invalidArgument("--select '" + std::string(name) +
                         "': expected cheapest, latency or manual");
}

Result<MaxPrices> parseMaxPrices(std::string_view text) {
  MaxPrices m;
  for (const std::string& part : split(text, ',')) {
    std::string_view p = trimSpace(part);
    if (p.empty()) continue;
    auto eq = p.find('=');
    if (eq == std::string_view::npos)
      return invalidArgument("--max-price '" + std::string(p) + "': expected NAME=AMOUNT");
    std::string name(trimSpace(p.substr(0, eq)));
    auto amount = parseAmount(trimSpace(p.substr(eq + 1)));
    if (!amount.isOk()) return amount.status().withContext("--max-price " + name);
    std::optional<Micros>* slot = name == "cpu"       ? &m.cpuSecond
                                  : name == "mem"     ? &m.memGibSecond
                                  : name == "egress"  ? &m.egressGib
                                  : name == "req"     ? &m.requests1k
                                  : name == "storage" ? &m.storageGibHour
                                                      : nullptr;
    if (!slot)
      return invalidArgument("--max-price: unknown price '" + name +
                             "' (expected cpu, mem, egress, req or storage)");
    *slot = *amount;
  }
  return m;
}

Result<std::map<std::string, std::string>> parseAttributes(const std::vector<std::string>& kv) {
  std::map<std::string, std::string> out;
  for (const auto& a : kv) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      return invalidArgument("--attr '" + a + "': expected KEY=VALUE");
    out[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return out;
}

Micros estimateHourlyCost(const ledger::Prices& prices, int64_t cpuMillis, int64_t memoryBytes,
                          int64_t storageBytes) {
  ledger::Usage u;
  u.cpuMillis = cpuMillis * 3600;  // millicores for 3600 s = CPU-milliseconds
  u.memMibSeconds = (memoryBytes >> 20) * 3600;
  u.storageMibSeconds = (storageBytes >> 20) * 3600;
  return ledger::computeOwed(prices, u);
}

std::string rejectionReason(const ledger::ProviderRecord& p, const Requirements& req) {
  if (!p.active) return "deregistered";
  if (p.gatewayUrl.empty()) return "no gateway URL registered";
  if (p.nodeKey.size() != 64) return "no valid node key registered";
  if (p.capacity.cpu < req.cpuMillis)
    return "capacity: needs cpu " + formatCpu(req.cpuMillis) + " at peak, has " +
           formatCpu(p.capacity.cpu);
  if (p.capacity.memory < req.memoryBytes)
    return "capacity: needs memory " + formatBytes(req.memoryBytes) + " at peak, has " +
           formatBytes(p.capacity.memory);
  if (p.capacity.storage > 0 && p.capacity.storage < req.storageBytes)
    return "capacity: needs storage " + formatBytes(req.storageBytes) + " at peak, has " +
           formatBytes(p.capacity.storage);
  for (const auto& [k, v] : req.attributes) {
    auto it = p.attributes.find(k);
    if (it == p.attributes.end()) return "attribute " + k + ": missing (wanted " + v + ")";
    if (it->second != v) return "attribute " + k + "=" + it->second + ", wanted " + v;
  }
  auto over = [](const char* what, Micros price, const std::optional<Micros>& max) {
    return max && price > *max ? std::string("price ") + what + " " + formatAmount(price) +
                                     " over --max-price " + formatAmount(*max)
                               : std::string();
  };
  for (std::string r : {over("cpu", p.prices.cpuSecond, req.maxPrices.cpuSecond),
                        over("mem", p.prices.memGibSecond, req.maxPrices.memGibSecond),
                        over("egress", p.prices.egressGib, req.maxPrices.egressGib),
                        over("req", p.prices.requests1k, req.maxPrices.requests1k),
                        over("storage", p.prices.storageGibHour, req.maxPrices.storageGibHour)}) {
    if (!r.empty()) return r;
  }
  return "";
}

Selection filterProviders(const std::vector<ledger::ProviderRecord>& providers,
                          const Requirements& req) {
  Selection s;
  for (const auto& p : providers) {
    std::string why = rejectionReason(p, req);
    if (!why.empty()) {
      s.rejected.push_back({p.owner, std::move(why)});
      continue;
    }
    s.eligible.push_back(
        {p, estimateHourlyCost(p.prices, req.cpuMillis, req.memoryBytes, req.storageBytes), {}});
  }
  return s;
}

void rankCandidates(std::vector<Candidate>& c, Strategy strategy) {
  if (strategy == Strategy::kLatency) {
    std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
      if (a.rttMs.has_value() != b.rttMs.has_value()) return a.rttMs.has_value();
      if (a.rttMs && *a.rttMs != *b.rttMs) return *a.rttMs < *b.rttMs;
      if (a.hourlyCost != b.hourlyCost) return a.hourlyCost < b.hourlyCost;
      return a.provider.owner < b.provider.owner;
    });
    return;
  }
  std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    if (a.hourlyCost != b.hourlyCost) return a.hourlyCost < b.hourlyCost;
    return a.provider.owner < b.provider.owner;
  });
}

}  // namespace mercato::publisher
