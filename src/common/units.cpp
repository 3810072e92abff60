#include "common/units.hpp"

#include <array>
#include <limits>
#include <utility>

namespace mercato {
namespace {

// Parses a non-negative decimal into (numerator, 10^fractionDigits), rejecting junk.
Status parseDecimal(std::string_view s, std::string_view what, std::string_view original,
                    __int128& num, __int128& den) {
  num = 0;
  den = 1;
  bool dot = false, digit = false;
  for (char c : s) {
    if (c == '.') {
      if (dot)
        return invalidArgument(std::string(what) + " '" + std::string(original) +
                               "': more than one '.'");
      dot = true;
      continue;
    }
    if (c < '0' || c > '9')
      return invalidArgument(std::string(what) + " '" + std::string(original) +
                             "': unexpected character '" + std::string(1, c) + "'");
    digit = true;
    num = num * 10 + (c - '0');
    if (dot) den *= 10;
    if (num > (static_cast<__int128>(1) << 100))
      return invalidArgument(std::string(what) + " '" + std::string(original) + "': too large");
  }
  if (!digit)
    return invalidArgument(std::string(what) + " '" + std::string(original) + "': no digits");
  return Status::ok();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

Result<Millicores> parseCpu(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return invalidArgument("cpu: empty (expected e.g. 500m or 2)");
  if (s.front() == '-') return invalidArgument("cpu '" + std::string(text) + "': negative");
  __int128 scale = 1000;  // whole cores -> millicores
  if (s.back() == 'm') {
    scale = 1;
    s.remove_suffix(1);
  }
  __int128 num, den;
  RETURN_IF_ERROR(parseDecimal(s, "cpu", text, num, den));
  __int128 v = num * scale;
  if (v % den != 0)
    return invalidArgument("cpu '" + std::string(text) + "': finer than one millicore");
  v /= den;
  if (v > std::numeric_limits<int64_t>::max())
    return invalidArgument("cpu '" + std::string(text) + "': too large");
  return static_cast<Millicores>(v);
}

Result<Bytes> parseBytes(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, int64_t>, 12> kSuffixes{{
      {"Ki", int64_t{1} << 10},
      {"Mi", int64_t{1} << 20},
      {"Gi", int64_t{1} << 30},
      {"Ti", int64_t{1} << 40},
      {"Pi", int64_t{1} << 50},
      {"Ei", int64_t{1} << 60},
      {"k", 1'000},
      {"M", 1'000'000},
      {"G", 1'000'000'000},
      {"T", 1'000'000'000'000},
      {"P", 1'000'000'000'000'000},
      {"E", 1'000'000'000'000'000'000},
  }};
  std::string_view s = trim(text);
  if (s.empty()) return invalidArgument("size: empty (expected e.g. 512Mi or 2Gi)");
  if (s.front() == '-') return invalidArgument("size '" + std::string(text) + "': negative");
  __int128 mult = 1;
  for (const auto& [suffix, m] : kSuffixes) {
    if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
      mult = m;
      s.remove_suffix(suffix.size());
      break;
    }
  }
  __int128 num, den;
  RETURN_IF_ERROR(parseDecimal(s, "size", text, num, den));
  __int128 v = num * mult;
  if (v % den != 0)
    return invalidArgument("size '" + std::string(text) + "': not a whole number of bytes");
  v /= den;
  if (v > std::numeric_limits<int64_t>::max())
    return invalidArgument("size '" + std::string(text) + "': too large");
  return static_cast<Bytes>(v);
}

std::string formatCpu(Millicores m) {
  if (m % 1000 == 0) return std::to_string(m / 1000);
  return std::to_string(m) + "m";
}

std::string formatBytes(Bytes b) {
  static constexpr std::array<std::pair<std::string_view, int64_t>, 6> kUnits{{
      {"Ei", int64_t{1} << 60},
      {"Pi", int64_t{1} << 50},
      {"Ti", int64_t{1} << 40},
      {"Gi", int64_t{1} << 30},
      {"Mi", int64_t{1} << 20},
      {"Ki", int64_t{1} << 10},
  }};
  if (b != 0) {
    for (const auto& [name, size] : kUnits)
      if (b % size == 0) return std::to_string(b / size) + std::string(name);
  }
  return std::to_string(b);
}

}  // namespace mercato
