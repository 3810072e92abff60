#include "common/money.hpp"

#include <limits>

namespace mercato {

Result<Micros> parseAmount(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.size() > kTokenSymbol.size() && s.substr(s.size() - kTokenSymbol.size()) == kTokenSymbol) {
    s.remove_suffix(kTokenSymbol.size());
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  }
  auto bad = [&](std::string_view why) {
    return invalidArgument("amount '" + std::string(text) + "': " + std::string(why) +
                           " (expected a decimal such as 12.5, at most 6 decimals)");
  };
  if (s.empty()) return bad("empty");
  if (s.front() == '-') return bad("negative amounts are not allowed");
  if (s.front() == '+') s.remove_prefix(1);
  __int128 whole = 0;
  int64_t frac = 0;
  int fracDigits = 0;
  bool seenDot = false, seenDigit = false;
  for (char c : s) {
    if (c == '.') {
      if (seenDot) return bad("more than one '.'");
      seenDot = true;
      continue;
    }
    if (c < '0' || c > '9') return bad(std::string("unexpected character '") + c + "'");
    seenDigit = true;
    if (seenDot) {
      if (++fracDigits > 6) return bad("more than 6 decimals");
      frac = frac * 10 + (c - '0');
    } else {
      whole = whole * 10 + (c - '0');
      if (whole > std::numeric_limits<int64_t>::max() / kMicrosPerToken) return bad("too large");
    }
  }
  if (!seenDigit) return bad("no digits");
  for (int i = fracDigits; i < 6; ++i) frac *= 10;
  return static_cast<Micros>(whole * kMicrosPerToken + frac);
}

std::string formatAmount(Micros m) {
  std::string sign;
  unsigned __int128 v;
  if (m < 0) {
    sign = "-";
    v = static_cast<unsigned __int128>(-(static_cast<__int128>(m)));
  } else {
    v = static_cast<unsigned __int128>(m);
  }
  uint64_t whole = static_cast<uint64_t>(v / kMicrosPerToken);
  uint64_t frac = static_cast<uint64_t>(v % kMicrosPerToken);
  std::string out = sign + std::to_string(whole);
  if (frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 6 - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out;
}

Result<Micros> checkedAdd(Micros a, Micros b) {
  Micros r;
  if (__builtin_add_overflow(a, b, &r)) return invalidArgument("amount overflow");
  return r;
}

Result<Micros> checkedSub(Micros a, Micros b) {
  Micros r;
  if (__builtin_sub_overflow(a, b, &r)) return invalidArgument("amount overflow");
  return r;
}

}  // namespace mercato
