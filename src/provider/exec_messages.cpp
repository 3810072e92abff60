// The interactive exec protocol's client messages (see exec_messages.hpp).
#include "provider/exec_messages.hpp"

#include <nlohmann/json.hpp>

#include "common/json_access.hpp"

namespace mercato::provider {

using nlohmann::json;

// The client's first message: {"type": "start", "args": [..], "service", "instance", "tty",
// "rows", "cols", "env": ["K=V"]}.
Result<runtime::ExecSessionRequest> parseExecStart(std::string_view text, size_t maxArgs) {
  constexpr std::string_view kWhere = "exec start";
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded())
    return invalidArgument(
        "exec start: the first message must be a JSON object {\"type\": \"start\", \"args\": "
        "[string, ...], ...}: not valid JSON");
  RETURN_IF_ERROR(expectObject(j, kWhere));
  ASSIGN_OR_RETURN(std::string type, getString(j, kWhere, "type"));
  if (type != "start") return invalidArgument("exec start: type: expected \"start\"");
  runtime::ExecSessionRequest r;
  ASSIGN_OR_RETURN(r.args, getStringArray(j, kWhere, "args"));
  if (r.args.empty()) return invalidArgument("exec start: args: expected a non-empty array");
  if (r.args.size() > maxArgs)
    return invalidArgument("exec start: args: more than " + std::to_string(maxArgs) + " entries");
  ASSIGN_OR_RETURN(r.service, getStringOr(j, kWhere, "service", ""));
  ASSIGN_OR_RETURN(r.instance, getStringOr(j, kWhere, "instance", ""));
  ASSIGN_OR_RETURN(r.tty, getBoolOr(j, kWhere, "tty", false));
  ASSIGN_OR_RETURN(int64_t rows, getIntInRange(j, kWhere, "rows", 1, 10000, 24));
  ASSIGN_OR_RETURN(int64_t cols, getIntInRange(j, kWhere, "cols", 1, 10000, 80));
  r.rows = static_cast<uint16_t>(rows);
  r.cols = static_cast<uint16_t>(cols);
  ASSIGN_OR_RETURN(r.env, getStringArrayOr(j, kWhere, "env", {}));
  for (size_t i = 0; i < r.env.size(); ++i) {
    const auto& e = r.env[i];
    if (e.find('=') == std::string::npos || e.front() == '=')
      return invalidArgument("exec start: env[" + std::to_string(i) + "]: expected NAME=value");
  }
  return r;
}

Result<ExecControl> parseExecControl(std::string_view text) {
  constexpr std::string_view kWhere = "exec control";
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded())
    return invalidArgument("exec control: text frames carry a JSON object: not valid JSON");
  RETURN_IF_ERROR(expectObject(j, kWhere));
  ExecControl c;
  ASSIGN_OR_RETURN(std::string type, getString(j, kWhere, "type"));
  if (type == "eof") {
    c.type = ExecControl::kEof;
  } else if (type == "terminate") {
    c.type = ExecControl::kTerminate;
  } else if (type == "resize") {
    c.type = ExecControl::kResize;
    ASSIGN_OR_RETURN(int64_t rows, getInt(j, kWhere, "rows"));
    ASSIGN_OR_RETURN(int64_t cols, getInt(j, kWhere, "cols"));
    if (rows < 1 || rows > 10000 || cols < 1 || cols > 10000)
      return invalidArgument("exec control: resize: rows and cols: expected integers in 1..10000");
    c.rows = static_cast<uint16_t>(rows);
    c.cols = static_cast<uint16_t>(cols);
  } else {
    return invalidArgument("exec control: type: expected \"resize\", \"eof\" or \"terminate\"");
  }
  return c;
}

}  // namespace mercato::provider
