// Pure request-routing helpers of the facade: which deployment a request's Host header or path
// prefix names. No I/O, no Beast types, so they are unit-tested and fuzzed on bytes.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mercato::provider::facade_routing {

// The routing key of a Host header value: lower-cased, port removed, and for
// "<label>.<domain>" just "<label>". Other hosts come back whole (a route's hostname may be a
// full name). Empty for an empty, bracketed (IPv6 literal) or malformed host.
std::string hostKey(std::string_view host, std::string_view domain);

struct PathRoute {
  std::string deployment;  // "" when the target is not under /d/<deployment>
  std::string target;      // the upstream target with the prefix stripped ("/" at least)
  std::optional<std::string> redirect;  // "/d/<dep>" without a slash: where to send the client
};
// Parses "/d/<deployment>/rest?query".
PathRoute parsePathRoute(std::string_view target);

}  // namespace mercato::provider::facade_routing
