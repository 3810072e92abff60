#include "provider/bidengine/pricing.hpp"

#include <limits>

#include "common/strings.hpp"
#include "provider/bidengine/scale/scale_pricing.hpp"
#include "provider/bidengine/script/script_pricing.hpp"
#include "publisher/selection.hpp"

namespace mercato::provider::bidengine {
namespace {

using Factory = Result<std::shared_ptr<PricingStrategy>> (*)(const PricingConfig&);
// The one name -> create() table, in the order the docs list them.
constexpr std::pair<const char*, Factory> kStrategies[] = {
    {"scale", &ScalePricing::create},
    {"script", &ScriptPricing::create},
};

int64_t saturatingMulAdd(int64_t acc, int64_t a, int64_t b) {
  __int128 v = static_cast<__int128>(acc) + static_cast<__int128>(a) * b;
  return v > std::numeric_limits<int64_t>::max() ? std::numeric_limits<int64_t>::max()
                                                 : static_cast<int64_t>(v);
}

}  // namespace

Result<std::shared_ptr<PricingStrategy>> createPricing(const PricingConfig& config) {
  for (const auto& [name, create] : kStrategies)
    if (config.strategy == name) return create(config);
  std::string known;
  for (const auto& [name, create] : kStrategies)
    known += (known.empty() ? "" : ", ") + std::string(name);
  return invalidArgument("pricing: unknown strategy '" + config.strategy + "' (known: " + known +
                         ")");
}

std::vector<std::string> pricingStrategyNames() {
  std::vector<std::string> out;
  for (const auto& [name, create] : kStrategies) out.emplace_back(name);
  return out;
}

ledger::Capacity totalResources(const std::vector<ledger::ResourceGroup>& groups) {
  ledger::Capacity c;
  for (const auto& g : groups) {
    const int64_t n = std::max<int64_t>(g.count, 1);
    c.cpu = saturatingMulAdd(c.cpu, g.cpu, n);
    c.memory = saturatingMulAdd(c.memory, g.memory, n);
    c.storage = saturatingMulAdd(c.storage, g.storage, n);
  }
  return c;
}

Micros hourlyEstimate(const ledger::Prices& prices, const std::vector<ledger::ResourceGroup>& g) {
  const ledger::Capacity total = totalResources(g);
  return publisher::estimateHourlyCost(prices, total.cpu, total.memory, total.storage);
}

Result<ledger::Prices> scaleToHourly(const ledger::Prices& rates, const ledger::Capacity& total,
                                     Micros hourly) {
  const Micros base = publisher::estimateHourlyCost(rates, total.cpu, total.memory, total.storage);
  if (base <= 0)
    return invalidArgument(
        "an hourly total needs non-zero cpuSecond/memGibSecond/storageGibHour rates to scale (the "
        "order's resources cost nothing under the configured rates)");
  if (hourly < 0) return invalidArgument("an hourly total must not be negative");
  ledger::Prices out;
  for (auto [dst, rate] :
       {std::pair{&out.cpuSecond, rates.cpuSecond},
        std::pair{&out.memGibSecond, rates.memGibSecond},
        std::pair{&out.egressGib, rates.egressGib}, std::pair{&out.requests1k, rates.requests1k},
        std::pair{&out.storageGibHour, rates.storageGibHour}}) {
    __int128 v = static_cast<__int128>(rate) * hourly / base;
    if (v > std::numeric_limits<Micros>::max())
      return invalidArgument("the hourly total " + formatAmount(hourly) +
                             " overflows a unit price");
    *dst = static_cast<Micros>(v);
  }
  return out;
}

nlohmann::json scriptInput(const PricingInput& in, const ledger::Prices& rates) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : in.resources) groups.push_back(ledger::toJson(g));
  return {{"order", in.order},
          {"owner", in.owner},
          {"resources", std::move(groups)},
          {"total", ledger::toJson(totalResources(in.resources))},
          {"maxPrice", ledger::toJson(in.maxPrice)},
          {"rates", ledger::toJson(rates)},
          {"hourlyAtRates", hourlyEstimate(rates, in.resources)}};
}

Result<ledger::Prices> parseScriptOutput(std::string_view out, const ledger::Prices& rates,
                                         const ledger::Capacity& total) {
  std::string_view text = trimSpace(out);
  if (text.empty()) return invalidArgument("empty; expected a Prices JSON object or a number");
  if (text.front() == '{') {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return invalidArgument("not valid JSON");
    return ledger::pricesFromJson(j, "price");
  }
  // One number: the hourly total in MER. parseAmount is exact (no floating point) and rejects
  // signs, exponents, more than six decimals and trailing garbage.
  if (text.find_first_of(" \t\r\n") != std::string_view::npos)
    return invalidArgument("'" + std::string(text.substr(0, 40)) +
                           "' is not one number; expected a Prices JSON object or a number");
  auto hourly = parseAmount(text);
  if (!hourly.isOk())
    return invalidArgument("'" + std::string(text.substr(0, 40)) +
                           "' is not a price: " + hourly.status().message());
  return scaleToHourly(rates, total, *hourly);
}

std::string pricingFailureReason(const Status& s) {
  switch (s.code()) {
    case Code::kDeadlineExceeded:
      return "pricing_timeout";
    case Code::kInvalidArgument:
      return "pricing_bad_output";
    case Code::kInternal:
      return "pricing_crashed";
    case Code::kFailedPrecondition:
      return "pricing_exit_status";
    case Code::kResourceExhausted:
      return "pricing_busy";
    case Code::kNotFound:
      return "pricing_not_found";
    default:
      return "pricing_error";
  }
}

}  // namespace mercato::provider::bidengine
