// Provider selection for `mercato deploy`: filter the registry's providers by what the app
// needs (peak resources, required attributes, price ceilings) and rank the rest.
//
// Strategies: cheapest (estimated cost of one hour at peak resources, CPU, memory and disk,
// under each provider's prices), latency (measured RTT to the gateway, ties broken on price),
// manual (the user picks from the ranked table; the CLI does the asking). The CLI measures RTT;
// these functions only order what they are given, so they are deterministic and unit-tested.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/money.hpp"
#include "common/status.hpp"
#include "ledger/types.hpp"

namespace mercato::publisher {

// Price ceilings; unset = no limit. Units as in ledger::Prices.
struct MaxPrices {
  std::optional<Micros> cpuSecond, memGibSecond, egressGib, requests1k, storageGibHour;
};

struct Requirements {
  int64_t cpuMillis = 0;                          // peak CPU (manifest peakCpuMillis)
  int64_t memoryBytes = 0;                        // peak memory
  int64_t storageBytes = 0;                       // peak disk (writable layers); 0 = not counted
  std::map<std::string, std::string> attributes;  // each must be present with this value
  MaxPrices maxPrices;
};

struct Candidate {
  ledger::ProviderRecord provider;
  Micros hourlyCost = 0;         // estimateHourlyCost at peak
  std::optional<int64_t> rttMs;  // set by the caller for the latency strategy; unset = unreachable
};

struct Rejection {
  std::string owner;
  std::string reason;  // "capacity: needs cpu 2, has 1"
};

struct Selection {
  std::vector<Candidate> eligible;
  std::vector<Rejection> rejected;
};

enum class Strategy { kCheapest, kLatency, kManual };
// "cheapest" | "latency" | "manual"; the error lists the choices.
Result<Strategy> parseStrategy(std::string_view name);

// "cpu=0.0001,mem=0.00002,egress=0.05,req=0.001,storage=0.0002" (any subset; amounts as in
// parseAmount; storage is per GiB-hour).
Result<MaxPrices> parseMaxPrices(std::string_view text);
// ["region=eu", "gpu=none"] -> map; errors name the bad entry.
Result<std::map<std::string, std::string>> parseAttributes(const std::vector<std::string>& kv);

// What running at (cpuMillis, memoryBytes, storageBytes of disk) for one hour costs under
// `prices` (rounded down, as the ledger does). Disk is counted at its full size: an upper bound,
// since the ledger charges only the bytes in use.
Micros estimateHourlyCost(const ledger::Prices& prices, int64_t cpuMillis, int64_t memoryBytes,
                          int64_t storageBytes);

// Why `p` cannot host the app, or "" when it can. Checks active, gateway and node key present,
// capacity >= peak (storage only against a provider that registered a storage capacity, as its
// bid engine does), attributes, price ceilings.
std::string rejectionReason(const ledger::ProviderRecord& p, const Requirements& req);

// Splits providers into eligible candidates (with hourlyCost) and rejections with reasons.
Selection filterProviders(const std::vector<ledger::ProviderRecord>& providers,
                          const Requirements& req);

// Orders candidates best first. Cheapest: cost, then owner. Latency: measured before
// unmeasured, RTT, then cost, then owner.
void rankCandidates(std::vector<Candidate>& candidates, Strategy strategy);

}  // namespace mercato::publisher
