// ScalePricing: the "scale" strategy. The configured rates are the bid's unit prices for every
// order; a lease's hourly cost is then linear in each resource and in each group's count (see
// pricing.hpp). Stateless after creation.
//
// Thread-safety: immutable; price() may be called from any thread.
#pragma once

#include <memory>

#include "provider/bidengine/pricing.hpp"

namespace mercato::provider::bidengine {

class ScalePricing final : public PricingStrategy {
 public:
  // Fails when every rate is zero (that would bid everything for free, which is never what an
  // operator meant).
  static Result<std::shared_ptr<PricingStrategy>> create(const PricingConfig& config);
  std::string_view name() const override { return "scale"; }
  Result<ledger::Prices> price(const PricingInput& input) override;

 private:
  explicit ScalePricing(const ledger::Prices& rates) : rates_(rates) {}
  ledger::Prices rates_;
};

}  // namespace mercato::provider::bidengine
