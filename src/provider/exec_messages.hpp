// The interactive exec protocol's client messages (docs/protocols.md, "Interactive exec"),
// parsed from untrusted text through common/json_access.hpp; kept apart from ExecSessions so
// tests and tests/fuzz/route_body_fuzz.cpp reach them without the network stack.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.hpp"
#include "runtime/runtime.hpp"

namespace mercato::provider {

// The protocol's client messages, parsed from untrusted text (exposed for tests and fuzzing).
// Errors name the message and field: "exec start: rows: expected an integer, got string".
Result<runtime::ExecSessionRequest> parseExecStart(std::string_view text, size_t maxArgs);
struct ExecControl {
  enum Type { kEof, kResize, kTerminate } type = kEof;
  uint16_t rows = 0, cols = 0;  // kResize
};
Result<ExecControl> parseExecControl(std::string_view text);

}  // namespace mercato::provider
