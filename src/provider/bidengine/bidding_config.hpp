// BiddingConfig: the `bidding:` section of provider.yaml, and the pricing config file it may
// point to (docs/bidengine.md).
//
//   bidding:
//     bidTtlSeconds: 300            # how long a bid stays open on the ledger
//     workers: 4                    # threads that price and submit bids
//     pricingFile: pricing.yaml     # optional; relative to provider.yaml; watched for changes
//     configPollMs: 2000            # how often pricingFile is checked
//     # without pricingFile, the pricing keys sit here directly:
//     strategy: scale               # scale | script
//     scale: {cpuSecond: 0.0001, memGibSecond: 0.00005, egressGib: 0.01, requests1k: 0.001,
//             storageGibHour: 0.0002}
//     script: {path: /usr/local/bin/price, args: [], timeoutMs: 2000, concurrency: 2,
//              maxOutputBytes: 65536}
//
// A pricing file holds `strategy`, `scale` and `script` only. Amounts are MER (decimals
// allowed, as in provider.yaml `prices`); absent scale rates default to the provider's prices.
// A relative script path is relative to the file that names it.
//
// LivePricing holds the current strategy. With a pricing file, poll() re-reads it: a valid
// change replaces the strategy (the next price() uses it, no restart); an invalid file is
// logged once and the previous strategy stays.
//
// Thread-safety: config types are values. LivePricing methods may be called from any thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <mutex>
#include <string>

#include "common/status.hpp"
#include "ledger/types.hpp"
#include "provider/bidengine/pricing.hpp"

namespace mercato::provider::bidengine {

struct BiddingConfig {
  PricingConfig pricing;    // used when pricingFile is empty
  std::string pricingFile;  // absolute after parsing; "" = the inline pricing
  int64_t bidTtlMs = 300'000;
  int64_t configPollMs = 2'000;
  int workers = 4;
};

// Parses the `bidding:` mapping at `node` ("bidding" is the field path in errors). `baseDir`
// resolves relative paths (provider.yaml's directory); `defaultRates` fills absent scale rates.
// Does not read the pricing file (LivePricing::create does).
Result<BiddingConfig> parseBiddingConfig(const YAML::Node& node, const std::string& origin,
                                         const std::string& baseDir,
                                         const ledger::Prices& defaultRates);
// Parses a pricing file's text; `origin` is its path (errors name origin:line).
Result<PricingConfig> parsePricingFile(const std::string& text, const std::string& origin,
                                       const ledger::Prices& defaultRates);

class LivePricing {
 public:
  // Builds the strategy from the inline config, or loads, parses and builds the pricing file
  // (which must be valid at startup).
  static Result<std::unique_ptr<LivePricing>> create(const BiddingConfig& config,
                                                     const ledger::Prices& defaultRates);

  // The strategy to price the next order with; never null. The caller keeps it alive for the
  // length of its call even if a reload replaces it.
  std::shared_ptr<PricingStrategy> current() const;
  PricingConfig currentConfig() const;
  // Bumped by every applied change.
  uint64_t generation() const;
  // The last reload failure ("" when the file in effect is the file on disk).
  std::string lastError() const;
  bool watched() const { return !path_.empty(); }

  // Re-reads the pricing file when it changed. Returns OK and applies a valid change; returns
  // the error (and keeps the previous strategy) for an invalid one. No-op without a file.
  // Blocking (file IO): call from a worker, not an event loop.
  Status poll();

 private:
  LivePricing(std::string path, ledger::Prices defaultRates)
      : path_(std::move(path)), defaultRates_(defaultRates) {}
  const std::string path_;
  const ledger::Prices defaultRates_;
  std::mutex pollMu_;  // one poll at a time
  mutable std::mutex mu_;
  std::shared_ptr<PricingStrategy> strategy_;
  PricingConfig config_;
  std::string text_;  // the file content last looked at (applied or rejected)
  uint64_t generation_ = 0;
  std::string error_;
};

}  // namespace mercato::provider::bidengine
