// Small string helpers shared by every module: hex, splitting, trimming.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato {

std::string toHex(std::span<const uint8_t> bytes);
std::string toHex(std::string_view bytes);
// Lower- or upper-case hex; fails on odd length or a non-hex character.
Result<std::vector<uint8_t>> fromHex(std::string_view hex);

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trimSpace(std::string_view s);
bool startsWith(std::string_view s, std::string_view prefix);

}  // namespace mercato
