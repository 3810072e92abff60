// The gateway's request parsing, apart from the routes so that every body and query a client
// sends can be unit-tested and fuzzed (tests/fuzz/route_body_fuzz.cpp) without a provider.
// Each parser reads untrusted bytes through common/json_access.hpp and returns
// kInvalidArgument naming the route, the field and what was expected; none throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "net/http.hpp"
#include "runtime/runtime.hpp"

namespace mercato::provider {

// POST /gateway/v1/deployments/{id}/macaroons: {"ttlSeconds"?: 1..2592000 (3600),
// "ops"?: ["read"|"exec", ...] (["read"])}. An empty body takes the defaults.
struct MacaroonRequest {
  int64_t ttlSeconds = 3600;
  std::vector<std::string> ops = {"read"};
};
Result<MacaroonRequest> parseMacaroonRequest(std::string_view body);

// POST /gateway/v1/deployments/{id}/exec: {"service"?: string, "args": [string, ...]}.
Result<runtime::ExecRequest> parseExecRequest(std::string_view body, const std::string& id);

// GET /gateway/v1/deployments/{id}/events?after=N&wait=MS (wait capped at 30000).
struct EventsQuery {
  uint64_t after = 0;
  int64_t waitMs = 0;
};
Result<EventsQuery> parseEventsQuery(const net::HttpRequest& req);

// GET /gateway/v1/deployments/{id}/logs?service=S&tail=N&follow=1.
Result<runtime::LogOptions> parseLogsQuery(const net::HttpRequest& req);

}  // namespace mercato::provider
