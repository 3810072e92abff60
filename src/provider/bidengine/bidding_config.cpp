#include "provider/bidengine/bidding_config.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/config.hpp"
#include "common/money.hpp"

namespace mercato::provider::bidengine {
namespace {

namespace fs = std::filesystem;

std::string under(const std::string& path, const char* key) {
  return path.empty() ? key : path + "." + key;
}

std::string resolvePath(const std::string& p, const std::string& baseDir) {
  if (p.empty() || p.front() == '/' || baseDir.empty()) return p;
  return (fs::path(baseDir) / p).lexically_normal().string();
}

// strategy / scale / script under `n` (a mapping), into `c`.
Status parsePricingKeys(const YAML::Node& n, const std::string& path, const std::string& origin,
                        const std::string& baseDir, PricingConfig& c) {
  ASSIGN_OR_RETURN(c.strategy, yamlString(n, "strategy", path, origin, c.strategy));
  YAML::Node scale = n["scale"];
  RETURN_IF_ERROR(yamlOnlyKeys(
      scale, {"cpuSecond", "memGibSecond", "egressGib", "requests1k", "storageGibHour"},
      under(path, "scale"), origin));
  if (scale.IsDefined() && scale.IsMap()) {
    for (auto [key, field] :
         {std::pair{"cpuSecond", &c.rates.cpuSecond},
          std::pair{"memGibSecond", &c.rates.memGibSecond},
          std::pair{"egressGib", &c.rates.egressGib}, std::pair{"requests1k", &c.rates.requests1k},
          std::pair{"storageGibHour", &c.rates.storageGibHour}}) {
      ASSIGN_OR_RETURN(std::string text, yamlString(scale, key, under(path, "scale"), origin, ""));
      if (text.empty()) continue;
      auto v = parseAmount(text);
      if (!v.isOk())
        return invalidArgument(yamlWhere(origin, scale[key]) + under(path, "scale") + "." + key +
                               ": " + v.status().message() + " (MER per unit)");
      *field = *v;
    }
  }
  YAML::Node script = n["script"];
  RETURN_IF_ERROR(yamlOnlyKeys(script,
                               {"path", "args", "timeoutMs", "concurrency", "maxOutputBytes"},
                               under(path, "script"), origin));
  if (script.IsDefined() && script.IsMap()) {
    const std::string sp = under(path, "script");
    ScriptSettings& s = c.script;
    ASSIGN_OR_RETURN(std::string p, yamlString(script, "path", sp, origin, ""));
    s.path = resolvePath(p, baseDir);
    YAML::Node args = script["args"];
    if (args.IsDefined() && !args.IsNull()) {
      if (!args.IsSequence())
        return invalidArgument(yamlWhere(origin, args) + sp + ".args: expected a list of strings");
      s.args.clear();
      for (const auto& a : args) {
        if (!a.IsScalar())
          return invalidArgument(yamlWhere(origin, a) + sp + ".args: expected strings");
        s.args.push_back(a.Scalar());
      }
    }
    ASSIGN_OR_RETURN(s.timeoutMs, yamlInt(script, "timeoutMs", sp, origin, s.timeoutMs));
    ASSIGN_OR_RETURN(int64_t conc, yamlInt(script, "concurrency", sp, origin, s.concurrency));
    ASSIGN_OR_RETURN(int64_t maxOut, yamlInt(script, "maxOutputBytes", sp, origin,
                                             static_cast<int64_t>(s.maxOutputBytes)));
    if (s.timeoutMs < 1 || s.timeoutMs > 600'000)
      return invalidArgument(origin + ": " + sp + ".timeoutMs: expected 1..600000");
    if (conc < 1 || conc > 256)
      return invalidArgument(origin + ": " + sp + ".concurrency: expected 1..256");
    if (maxOut < 16 || maxOut > (16 << 20))
      return invalidArgument(origin + ": " + sp + ".maxOutputBytes: expected 16..16777216");
    s.concurrency = static_cast<int>(conc);
    s.maxOutputBytes = static_cast<size_t>(maxOut);
  }
  if (c.strategy == "script" && c.script.path.empty())
    return invalidArgument(origin + ": " + under(path, "script") +
                           ".path: required by strategy script");
  return Status();
}

Result<BiddingConfig> parseBiddingUnchecked(const YAML::Node& n, const std::string& origin,
                                            const std::string& baseDir,
                                            const ledger::Prices& defaultRates) {
  BiddingConfig c;
  c.pricing.rates = defaultRates;
  if (!n.IsDefined() || n.IsNull()) return c;
  RETURN_IF_ERROR(yamlOnlyKeys(
      n, {"bidTtlSeconds", "workers", "pricingFile", "configPollMs", "strategy", "scale", "script"},
      "bidding", origin));
  ASSIGN_OR_RETURN(int64_t ttlS, yamlInt(n, "bidTtlSeconds", "bidding", origin, c.bidTtlMs / 1000));
  if (ttlS < 1) return invalidArgument(origin + ": bidding.bidTtlSeconds: expected at least 1");
  c.bidTtlMs = ttlS * 1000;
  ASSIGN_OR_RETURN(int64_t workers, yamlInt(n, "workers", "bidding", origin, c.workers));
  if (workers < 1 || workers > 64)
    return invalidArgument(origin + ": bidding.workers: expected 1..64");
  c.workers = static_cast<int>(workers);
  ASSIGN_OR_RETURN(c.configPollMs, yamlInt(n, "configPollMs", "bidding", origin, c.configPollMs));
  if (c.configPollMs < 10)
    return invalidArgument(origin + ": bidding.configPollMs: expected at least 10");
  ASSIGN_OR_RETURN(std::string file, yamlString(n, "pricingFile", "bidding", origin, ""));
  c.pricingFile = resolvePath(file, baseDir);
  if (!c.pricingFile.empty()) {
    for (const char* k : {"strategy", "scale", "script"})
      if (n[k].IsDefined())
        return invalidArgument(yamlWhere(origin, n[k]) + "bidding." + k +
                               ": not allowed with bidding.pricingFile (put it in " +
                               c.pricingFile + ")");
    return c;
  }
  RETURN_IF_ERROR(parsePricingKeys(n, "bidding", origin, baseDir, c.pricing));
  return c;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return notFound("pricing file " + path + ": cannot be read");
  std::ostringstream s;
  s << f.rdbuf();
  if (s.str().size() > (1 << 20)) return invalidArgument("pricing file " + path + ": over 1 MiB");
  return s.str();
}

}  // namespace

Result<BiddingConfig> parseBiddingConfig(const YAML::Node& node, const std::string& origin,
                                         const std::string& baseDir,
                                         const ledger::Prices& defaultRates) {
  try {
    return parseBiddingUnchecked(node, origin, baseDir, defaultRates);
  } catch (const YAML::Exception& e) {
    return invalidArgument(origin + ": bidding: " + e.what());
  }
}

Result<PricingConfig> parsePricingFile(const std::string& text, const std::string& origin,
                                       const ledger::Prices& defaultRates) {
  ASSIGN_OR_RETURN(YAML::Node root, parseYaml(text, origin));
  PricingConfig c;
  c.rates = defaultRates;
  try {
    if (!root.IsDefined() || root.IsNull() || !root.IsMap())
      return invalidArgument(origin + ": expected a mapping with strategy, scale and script");
    RETURN_IF_ERROR(yamlOnlyKeys(root, {"strategy", "scale", "script"}, "", origin));
    RETURN_IF_ERROR(parsePricingKeys(root, "", origin, fs::path(origin).parent_path().string(), c));
  } catch (const YAML::Exception& e) {
    return invalidArgument(origin + ": " + e.what());
  }
  return c;
}

Result<std::unique_ptr<LivePricing>> LivePricing::create(const BiddingConfig& config,
                                                         const ledger::Prices& defaultRates) {
  std::unique_ptr<LivePricing> lp(new LivePricing(config.pricingFile, defaultRates));
  PricingConfig pc = config.pricing;
  if (lp->watched()) {
    ASSIGN_OR_RETURN(lp->text_, readFile(lp->path_));
    ASSIGN_OR_RETURN(pc, parsePricingFile(lp->text_, lp->path_, defaultRates));
  }
  ASSIGN_OR_RETURN(lp->strategy_, createPricing(pc));
  lp->config_ = pc;
  return lp;
}

std::shared_ptr<PricingStrategy> LivePricing::current() const {
  std::lock_guard lock(mu_);
  return strategy_;
}

PricingConfig LivePricing::currentConfig() const {
  std::lock_guard lock(mu_);
  return config_;
}

uint64_t LivePricing::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

std::string LivePricing::lastError() const {
  std::lock_guard lock(mu_);
  return error_;
}

Status LivePricing::poll() {
  if (!watched()) return Status();
  std::lock_guard one(pollMu_);
  auto text = readFile(path_);
  std::string fingerprint = text.isOk() ? *text : "\x01" + text.status().message();
  {
    std::lock_guard lock(mu_);
    if (fingerprint == text_) return error_.empty() ? Status() : invalidArgument(error_);
    text_ = fingerprint;  // looked at: a rejected file is not re-parsed (or re-logged) each poll
  }
  auto apply = [&]() -> Status {
    if (!text.isOk()) return text.status();
    ASSIGN_OR_RETURN(PricingConfig pc, parsePricingFile(*text, path_, defaultRates_));
    ASSIGN_OR_RETURN(auto strategy, createPricing(pc));
    std::lock_guard lock(mu_);
    strategy_ = std::move(strategy);
    config_ = std::move(pc);
    ++generation_;
    error_.clear();
    return Status();
  };
  Status s = apply();
  if (s.isOk()) {
    spdlog::info("bidengine: pricing config {} reloaded (strategy {})", path_,
                 currentConfig().strategy);
    return s;
  }
  spdlog::warn("bidengine: pricing config {} rejected, keeping the previous one: {}", path_,
               s.message());
  std::lock_guard lock(mu_);
  error_ = s.message();
  return s;
}

}  // namespace mercato::provider::bidengine
