// Typed, checked reads of untrusted JSON (request bodies, RPC replies, WebSocket messages).
//
// nlohmann's get<T>(), value() and at() throw on a wrong type or a missing key; on a worker
// thread that used to terminate the node. Every read of an untrusted document goes through these
// instead: a wrong type, a missing required field or an out-of-range integer is a
// kInvalidArgument naming where it was, the field and what was expected, for example
//   "macaroons: ttlSeconds: expected an integer, got string".
// `where` is the context (a route or message name, "macaroons" or "exec start"); `key` is the
// field of the object `j`. A key that is present with JSON null counts as absent for the
// *Or variants (a client that serialises an unset optional as null is not wrong).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"

namespace mercato {

// "string", "integer", "number with a fraction", "array", ... for error messages.
std::string jsonTypeName(const nlohmann::json& j);

// OK when `j` is an object; otherwise "<where>: expected a JSON object, got <type>".
Status expectObject(const nlohmann::json& j, std::string_view where);

// Required fields: absent (or null) is "<where>: <key>: missing (expected <type>)".
Result<int64_t> getInt(const nlohmann::json& j, std::string_view where, std::string_view key);
Result<std::string> getString(const nlohmann::json& j, std::string_view where,
                              std::string_view key);
Result<bool> getBool(const nlohmann::json& j, std::string_view where, std::string_view key);
Result<std::vector<std::string>> getStringArray(const nlohmann::json& j, std::string_view where,
                                                std::string_view key);
// A required object or array member, returned by reference into `j`.
Result<const nlohmann::json*> getObject(const nlohmann::json& j, std::string_view where,
                                        std::string_view key);
Result<const nlohmann::json*> getArray(const nlohmann::json& j, std::string_view where,
                                       std::string_view key);

// Optional fields: absent or null gives the fallback; present with a wrong type is an error.
Result<int64_t> getIntOr(const nlohmann::json& j, std::string_view where, std::string_view key,
                         int64_t fallback);
// An optional integer that must lie in [lo, hi]: "<where>: <key>: expected an integer in
// lo..hi, got 0".
Result<int64_t> getIntInRange(const nlohmann::json& j, std::string_view where, std::string_view key,
                              int64_t lo, int64_t hi, int64_t fallback);
Result<std::string> getStringOr(const nlohmann::json& j, std::string_view where,
                                std::string_view key, std::string fallback);
Result<bool> getBoolOr(const nlohmann::json& j, std::string_view where, std::string_view key,
                       bool fallback);
Result<std::vector<std::string>> getStringArrayOr(const nlohmann::json& j, std::string_view where,
                                                  std::string_view key,
                                                  std::vector<std::string> fallback);
// nullptr when absent or null.
Result<const nlohmann::json*> getObjectOr(const nlohmann::json& j, std::string_view where,
                                          std::string_view key);

// A whole decimal integer from a query parameter or header (no sign for unsigned use: pass
// lo >= 0): "<where>: <name>: expected an integer in lo..hi, got \"x\"".
Result<int64_t> parseIntParam(std::string_view text, std::string_view where, std::string_view name,
                              int64_t lo, int64_t hi);
// The same for an optional parameter: nullopt gives the fallback.
Result<int64_t> parseIntParamOr(const std::optional<std::string>& text, std::string_view where,
                                std::string_view name, int64_t lo, int64_t hi, int64_t fallback);

}  // namespace mercato
