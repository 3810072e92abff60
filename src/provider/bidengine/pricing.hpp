// Pricing strategies of the bid engine: given an open order, the price table to bid.
//
// A bid's price is a ledger::Prices table (per CPU-second, per GiB-second of memory, per GiB of
// egress, per 1,000 requests, per GiB-hour of disk): the same unit prices the lease's escrow
// meters usage with. The
// order's resources decide how much a lease will cost per hour, not the unit prices themselves,
// so a strategy is free to price small and large orders differently.
//
// Strategies (the name -> create() table is in pricing.cpp; docs/bidengine.md has details):
//   "scale"  — linear: the configured rates ARE the bid's unit prices, for every order. What a
//              lease costs then grows linearly with each resource and with each group's count:
//                hourly = Σ_groups count × (cpu × 3600 × cpuSecond + memGiB × 3600 × memGibSecond
//                                            + storageGiB × storageGibHour)
//              (hourlyEstimate(); storage at the group's full disk size, though only the bytes
//              in use are metered; egress and requests are metered on use and not estimated).
//   "script" — an external program gets the order as JSON on stdin and prints a price: a JSON
//              Prices object in micro-units, or one decimal number, the hourly total in MER,
//              which becomes a Prices table by scaling the rates in proportion
//              (scaleToHourly()). It runs with a timeout, a concurrency limit and bounded output.
//
// A strategy never clamps to the order's caps: the engine compares the price with the caps and
// does not bid when any term is over (PriceCaps are checked by the engine, not here).
//
// Thread-safety: PricingStrategy::price() is called concurrently from the engine's workers;
// implementations are internally synchronized. Value types and free functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/money.hpp"
#include "common/status.hpp"
#include "ledger/market.hpp"
#include "ledger/types.hpp"

namespace mercato::provider::bidengine {

// What a strategy sees of one order.
struct PricingInput {
  std::string order;
  std::string owner;  // the order's publisher
  std::vector<ledger::ResourceGroup> resources;
  ledger::PriceCaps maxPrice;
};

struct ScriptSettings {
  std::string path;               // absolute, or relative to the file it was configured in
  std::vector<std::string> args;  // extra arguments after the path
  int64_t timeoutMs = 2'000;
  int concurrency = 2;  // scripts running at once; a caller waits at most timeoutMs for a slot
  size_t maxOutputBytes = 64 * 1024;
  bool operator==(const ScriptSettings&) const = default;
};

struct PricingConfig {
  std::string strategy = "scale";
  // The scale strategy's unit prices; for "script", the proportions a single-number (hourly)
  // answer is spread over. Defaults to the provider's registered prices.
  ledger::Prices rates;
  ScriptSettings script;
  bool operator==(const PricingConfig&) const = default;
};

class PricingStrategy {
 public:
  virtual ~PricingStrategy() = default;
  virtual std::string_view name() const = 0;
  // The unit prices to bid for `input`, or why there is no price (see pricingFailureReason).
  // REQUIRES: input.resources is not empty.
  virtual Result<ledger::Prices> price(const PricingInput& input) = 0;
};

// The strategy named by config.strategy; an unknown name is kInvalidArgument listing the known.
// Fails on a config the strategy can't use (script without a path, non-positive timeout).
Result<std::shared_ptr<PricingStrategy>> createPricing(const PricingConfig& config);
// "scale", "script": the order of the create() table.
std::vector<std::string> pricingStrategyNames();

// Σ over groups of per-instance resources × count (saturating; counts < 1 count as 1).
ledger::Capacity totalResources(const std::vector<ledger::ResourceGroup>& groups);
// One hour at the order's total CPU, memory and storage under `prices`, rounded down like the
// ledger (publisher::estimateHourlyCost).
Micros hourlyEstimate(const ledger::Prices& prices, const std::vector<ledger::ResourceGroup>& g);
// The Prices table proportional to `rates` whose hourlyEstimate for `total` is `hourly` (each
// term rounded down, so the estimate never exceeds `hourly`). kInvalidArgument when `rates`
// estimate to zero for `total` (nothing to scale) or the result overflows.
Result<ledger::Prices> scaleToHourly(const ledger::Prices& rates, const ledger::Capacity& total,
                                     Micros hourly);

// The JSON a script gets on stdin (documented in docs/bidengine.md):
// {"order", "owner", "resources":[{name,cpu,memory,storage,count}], "total":{cpu,memory,storage},
//  "maxPrice":{...caps present...}, "rates":{Prices}, "hourlyAtRates": n}
nlohmann::json scriptInput(const PricingInput& input, const ledger::Prices& rates);
// Parses a script's stdout (surrounding whitespace ignored): a JSON Prices object (the four
// integer fields cpuSecond, memGibSecond, egressGib, requests1k and optionally storageGibHour,
// micro-units), or one decimal number = the hourly total in MER.
// kInvalidArgument naming what was wrong for anything else.
Result<ledger::Prices> parseScriptOutput(std::string_view out, const ledger::Prices& rates,
                                         const ledger::Capacity& total);

// The label a failed price() is counted under, from its Status code:
//   kDeadlineExceeded (timeout) -> "pricing_timeout"
//   kInvalidArgument (garbage or too much output) -> "pricing_bad_output"
//   kInternal (killed by a signal: a crash) -> "pricing_crashed"
//   kFailedPrecondition (non-zero exit) -> "pricing_exit_status"
//   kResourceExhausted (no concurrency slot in time) -> "pricing_busy"
//   kNotFound (script missing) -> "pricing_not_found"; anything else -> "pricing_error".
std::string pricingFailureReason(const Status& s);

}  // namespace mercato::provider::bidengine
