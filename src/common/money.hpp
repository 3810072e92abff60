// Money: integer micro-units of the ledger token (1 MER = 1,000,000 micro-units).
// Never floating point. Text forms are exact decimals with at most six fractional digits.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace mercato {

using Micros = int64_t;
inline constexpr Micros kMicrosPerToken = 1'000'000;
inline constexpr std::string_view kTokenSymbol = "MER";

// Parses "12.5", "0.000001", "7" (optionally suffixed " MER") into micro-units.
// Fails on negatives, more than six decimals, empty input or overflow, naming the input.
Result<Micros> parseAmount(std::string_view text);
// Formats micro-units as the shortest exact decimal: 12500000 -> "12.5", -3 -> "-0.000003".
std::string formatAmount(Micros m);

// a + b and a - b, or an error on int64 overflow. Ledger arithmetic goes through these.
Result<Micros> checkedAdd(Micros a, Micros b);
Result<Micros> checkedSub(Micros a, Micros b);

}  // namespace mercato
