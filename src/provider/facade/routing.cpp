#include "provider/facade/routing.hpp"

#include <algorithm>
#include <cctype>

namespace mercato::provider::facade_routing {

std::string hostKey(std::string_view host, std::string_view domain) {
  if (host.empty() || host.front() == '[') return "";
  const size_t colon = host.rfind(':');
  if (colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return "";
    }
    host = host.substr(0, colon);
  }
  std::string h;
  h.reserve(host.size());
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '-' || c == '.' || c == '_')) return "";
    h.push_back(static_cast<char>(std::tolower(u)));
  }
  while (!h.empty() && h.back() == '.') h.pop_back();  // "app.example." is "app.example"
  std::string suffix = ".";
  for (char c : domain)
    suffix.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (!domain.empty() && h.size() > suffix.size() &&
      h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0) {
    std::string label = h.substr(0, h.size() - suffix.size());
    if (label.find('.') == std::string::npos) return label;
  }
  return h;
}

PathRoute parsePathRoute(std::string_view target) {
  PathRoute out;
  constexpr std::string_view kPrefix = "/d/";
  if (target.substr(0, kPrefix.size()) != kPrefix) return out;
  std::string_view rest = target.substr(kPrefix.size());
  const size_t end = rest.find_first_of("/?#");
  const std::string_view dep = rest.substr(0, end);
  if (dep.empty()) return out;
  out.deployment = std::string(dep);
  if (end == std::string_view::npos || rest[end] != '/') {
    const std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);
    out.redirect = std::string(kPrefix) + out.deployment + "/" + std::string(tail);
    return out;
  }
  out.target = std::string(rest.substr(end));
  return out;
}

}  // namespace mercato::provider::facade_routing
