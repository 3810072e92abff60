// ScriptPricing: the "script" strategy. For each order it runs the configured program with the
// order as JSON on stdin (scriptInput() in pricing.hpp) and reads a price from its stdout
// (parseScriptOutput()). Every run is bounded by runProcess() (common/subprocess.hpp) in its
// own process group: a timeout or more than maxOutputBytes of output kills the script and every
// helper it forked, and its stderr is kept up to 4 KiB; at most `concurrency` scripts run at once
// and a caller waits at most the timeout for a slot. A timeout, a crash, a non-zero exit or
// unreadable output is an error whose code pricingFailureReason() maps to the counted reason; the
// script's stderr is in the message.
//
// The concurrency limit belongs to one strategy instance: after a live config change, runs of
// the previous instance finish under its own limit.
//
// Thread-safety: price() may be called from any thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include "provider/bidengine/pricing.hpp"

namespace mercato::provider::bidengine {

class ScriptPricing final : public PricingStrategy {
 public:
  // Fails when the script path is empty or not executable, or a limit is not positive.
  static Result<std::shared_ptr<PricingStrategy>> create(const PricingConfig& config);
  std::string_view name() const override { return "script"; }
  Result<ledger::Prices> price(const PricingInput& input) override;

 private:
  explicit ScriptPricing(PricingConfig config) : config_(std::move(config)) {}
  PricingConfig config_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
};

}  // namespace mercato::provider::bidengine
