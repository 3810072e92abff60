#include "provider/bidengine/script/script_pricing.hpp"

#include <unistd.h>

#include "common/strings.hpp"
#include "common/subprocess.hpp"

namespace mercato::provider::bidengine {

Result<std::shared_ptr<PricingStrategy>> ScriptPricing::create(const PricingConfig& config) {
  const ScriptSettings& s = config.script;
  if (s.path.empty()) return invalidArgument("pricing: script: script.path is required");
  if (s.path.front() != '/')
    return invalidArgument("pricing: script: script.path '" + s.path + "' must be absolute");
  if (::access(s.path.c_str(), X_OK) != 0)
    return invalidArgument("pricing: script: " + s.path + " is missing or not executable");
  if (s.timeoutMs < 1) return invalidArgument("pricing: script: timeoutMs must be at least 1");
  if (s.concurrency < 1) return invalidArgument("pricing: script: concurrency must be at least 1");
  if (s.maxOutputBytes < 16)
    return invalidArgument("pricing: script: maxOutputBytes must be at least 16");
  return std::shared_ptr<PricingStrategy>(new ScriptPricing(config));
}

Result<ledger::Prices> ScriptPricing::price(const PricingInput& input) {
  const ScriptSettings& s = config_.script;
  const auto timeout = std::chrono::milliseconds(s.timeoutMs);
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return running_ < s.concurrency; }))
      return resourceExhausted("pricing script: no free slot within " +
                               std::to_string(s.timeoutMs) + " ms (" +
                               std::to_string(s.concurrency) + " running)");
    ++running_;
  }
  struct Slot {
    ScriptPricing* self;
    ~Slot() {
      {
        std::lock_guard lock(self->mu_);
        --self->running_;
      }
      self->cv_.notify_one();
    }
  } slot{this};

  // The script is the operator's program, untrusted as far as the engine goes: it may hang,
  // crash, fork helpers or print megabytes.
  ProcessSpec spec;
  spec.argv.push_back(s.path);
  spec.argv.insert(spec.argv.end(), s.args.begin(), s.args.end());
  spec.stdinData = scriptInput(input, config_.rates).dump() + "\n";
  spec.timeout = timeout;
  spec.ownProcessGroup = true;
  spec.maxStdout = s.maxOutputBytes;
  spec.killOnStdoutOverflow = true;
  spec.maxStderr = 4096;
  auto run = runProcess(spec);
  if (!run.isOk()) return run.status().withContext("pricing script");
  const ProcessResult& r = *run;
  std::string err(trimSpace(r.err));
  if (err.size() > 500) err = err.substr(0, 500) + "...";
  const std::string tail = err.empty() ? "" : " (stderr: " + err + ")";
  if (r.timedOut) return deadlineExceeded("pricing script " + r.describe() + tail);
  if (r.outputTooLarge)
    return invalidArgument("pricing script printed more than " + std::to_string(s.maxOutputBytes) +
                           " bytes" + tail);
  if (r.signal != 0) return internalError("pricing script crashed: " + r.describe() + tail);
  if (r.exitCode != 0) return failedPrecondition("pricing script failed: " + r.describe() + tail);
  auto p = parseScriptOutput(r.out, config_.rates, totalResources(input.resources));
  if (!p.isOk()) return p.status().withContext("pricing script output");
  return p;
}

}  // namespace mercato::provider::bidengine
