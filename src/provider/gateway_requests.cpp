// The gateway's request parsing (see gateway_requests.hpp).
#include "provider/gateway_requests.hpp"

#include <nlohmann/json.hpp>

#include "common/json_access.hpp"

namespace mercato::provider {

using nlohmann::json;

namespace {

Result<json> parseBody(std::string_view body, std::string_view where) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return invalidArgument(std::string(where) + ": the body is not valid JSON");
  RETURN_IF_ERROR(expectObject(j, where));
  return j;
}

}  // namespace

Result<MacaroonRequest> parseMacaroonRequest(std::string_view body) {
  constexpr std::string_view kWhere = "macaroons";
  MacaroonRequest r;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return r;
  ASSIGN_OR_RETURN(json j, parseBody(body, kWhere));
  ASSIGN_OR_RETURN(r.ttlSeconds,
                   getIntInRange(j, kWhere, "ttlSeconds", 1, 30 * 24 * 3600, r.ttlSeconds));
  ASSIGN_OR_RETURN(r.ops, getStringArrayOr(j, kWhere, "ops", r.ops));
  if (r.ops.empty()) return invalidArgument("macaroons: ops: expected at least one op");
  for (size_t i = 0; i < r.ops.size(); ++i) {
    if (r.ops[i] != "read" && r.ops[i] != "exec")
      return invalidArgument("macaroons: ops[" + std::to_string(i) +
                             "]: expected \"read\" or \"exec\"");
  }
  return r;
}

Result<runtime::ExecRequest> parseExecRequest(std::string_view body, const std::string& id) {
  constexpr std::string_view kWhere = "exec";
  ASSIGN_OR_RETURN(json j, parseBody(body, kWhere));
  runtime::ExecRequest x;
  x.deployment = id;
  ASSIGN_OR_RETURN(x.service, getStringOr(j, kWhere, "service", ""));
  ASSIGN_OR_RETURN(x.args, getStringArray(j, kWhere, "args"));
  if (x.args.empty()) return invalidArgument("exec: args: expected a non-empty array of strings");
  return x;
}

Result<EventsQuery> parseEventsQuery(const net::HttpRequest& req) {
  EventsQuery q;
  ASSIGN_OR_RETURN(int64_t after,
                   parseIntParamOr(req.queryParam("after"), "events", "after", 0, INT64_MAX, 0));
  q.after = static_cast<uint64_t>(after);
  // A longer wait is not an error: it is capped.
  ASSIGN_OR_RETURN(int64_t wait,
                   parseIntParamOr(req.queryParam("wait"), "events", "wait", 0, INT64_MAX, 0));
  q.waitMs = std::min<int64_t>(wait, 30'000);
  return q;
}

Result<runtime::LogOptions> parseLogsQuery(const net::HttpRequest& req) {
  runtime::LogOptions lo;
  lo.service = req.queryParam("service").value_or("");
  ASSIGN_OR_RETURN(int64_t tail,
                   parseIntParamOr(req.queryParam("tail"), "logs", "tail", 0, 100'000, 100));
  lo.tail = static_cast<size_t>(tail);
  lo.follow = req.queryParam("follow").value_or("") == "1";
  return lo;
}

}  // namespace mercato::provider
