#include "provider/bidengine/scale/scale_pricing.hpp"

namespace mercato::provider::bidengine {

Result<std::shared_ptr<PricingStrategy>> ScalePricing::create(const PricingConfig& config) {
  if (config.rates == ledger::Prices{})
    return invalidArgument(
        "pricing: scale: every rate is zero; set scale.cpuSecond, memGibSecond, egressGib, "
        "requests1k or storageGibHour (MER per unit)");
  return std::shared_ptr<PricingStrategy>(new ScalePricing(config.rates));
}

Result<ledger::Prices> ScalePricing::price(const PricingInput&) { return rates_; }

}  // namespace mercato::provider::bidengine
