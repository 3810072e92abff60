// Typed, checked reads of untrusted JSON (see json_access.hpp).
#include "common/json_access.hpp"

#include <charconv>
#include <limits>

namespace mercato {

using nlohmann::json;

namespace {

std::string prefix(std::string_view where, std::string_view key) {
  std::string p(where);
  if (!p.empty()) p += ": ";
  p.append(key);
  return p;
}

Status wrongType(std::string_view where, std::string_view key, std::string_view expected,
                 const json& got) {
  return invalidArgument(prefix(where, key) + ": expected " + std::string(expected) + ", got " +
                         jsonTypeName(got));
}

Status missing(std::string_view where, std::string_view key, std::string_view expected) {
  return invalidArgument(prefix(where, key) + ": missing (expected " + std::string(expected) + ")");
}

// The member `key` of object `j`, or nullptr when `j` is not an object, has no such key or it
// is null.
const json* member(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<int64_t> asInt(const json& v, std::string_view where, std::string_view key) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return invalidArgument(prefix(where, key) + ": expected an integer, got one out of range");
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return wrongType(where, key, "an integer", v);
}

Result<std::vector<std::string>> asStringArray(const json& v, std::string_view where,
                                               std::string_view key) {
  if (!v.is_array()) return wrongType(where, key, "an array of strings", v);
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string())
      return wrongType(where, std::string(key) + "[" + std::to_string(i) + "]", "a string", v[i]);
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

// A required object in `j` (the document itself must be an object).
Status needObject(const json& j, std::string_view where) { return expectObject(j, where); }

}  // namespace

std::string jsonTypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number with a fraction";
    case json::value_t::binary:
      return "binary";
    case json::value_t::discarded:
      return "invalid JSON";
  }
  return "unknown";
}

Status expectObject(const json& j, std::string_view where) {
  if (j.is_object()) return Status::ok();
  return invalidArgument(std::string(where) + ": expected a JSON object, got " + jsonTypeName(j));
}

Result<int64_t> getInt(const json& j, std::string_view where, std::string_view key) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return missing(where, key, "an integer");
  return asInt(*v, where, key);
}

Result<std::string> getString(const json& j, std::string_view where, std::string_view key) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return missing(where, key, "a string");
  if (!v->is_string()) return wrongType(where, key, "a string", *v);
  return v->get<std::string>();
}

Result<bool> getBool(const json& j, std::string_view where, std::string_view key) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return missing(where, key, "a boolean");
  if (!v->is_boolean()) return wrongType(where, key, "a boolean", *v);
  return v->get<bool>();
}

Result<std::vector<std::string>> getStringArray(const json& j, std::string_view where,
                                                std::string_view key) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return missing(where, key, "an array of strings");
  return asStringArray(*v, where, key);
}

Result<const json*> getObject(const json& j, std::string_view where, std::string_view key) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return missing(where, key, "an object");
  if (!v->is_object()) return wrongType(where, key, "an object", *v);
  return v;
}

Result<const json*> getArray(const json& j, std::string_view where, std::string_view key) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return missing(where, key, "an array");
  if (!v->is_array()) return wrongType(where, key, "an array", *v);
  return v;
}

Result<int64_t> getIntOr(const json& j, std::string_view where, std::string_view key,
                         int64_t fallback) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return fallback;
  return asInt(*v, where, key);
}

Result<int64_t> getIntInRange(const json& j, std::string_view where, std::string_view key,
                              int64_t lo, int64_t hi, int64_t fallback) {
  ASSIGN_OR_RETURN(int64_t n, getIntOr(j, where, key, fallback));
  if (n < lo || n > hi)
    return invalidArgument(prefix(where, key) + ": expected an integer in " + std::to_string(lo) +
                           ".." + std::to_string(hi) + ", got " + std::to_string(n));
  return n;
}

Result<std::string> getStringOr(const json& j, std::string_view where, std::string_view key,
                                std::string fallback) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return fallback;
  if (!v->is_string()) return wrongType(where, key, "a string", *v);
  return v->get<std::string>();
}

Result<bool> getBoolOr(const json& j, std::string_view where, std::string_view key, bool fallback) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) return wrongType(where, key, "a boolean", *v);
  return v->get<bool>();
}

Result<std::vector<std::string>> getStringArrayOr(const json& j, std::string_view where,
                                                  std::string_view key,
                                                  std::vector<std::string> fallback) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return fallback;
  return asStringArray(*v, where, key);
}

Result<const json*> getObjectOr(const json& j, std::string_view where, std::string_view key) {
  RETURN_IF_ERROR(needObject(j, where));
  const json* v = member(j, key);
  if (!v) return static_cast<const json*>(nullptr);
  if (!v->is_object()) return wrongType(where, key, "an object", *v);
  return v;
}

Result<int64_t> parseIntParam(std::string_view text, std::string_view where, std::string_view name,
                              int64_t lo, int64_t hi) {
  int64_t n = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc() || ptr != end || n < lo || n > hi) {
    std::string shown(text.substr(0, 40));
    return invalidArgument(prefix(where, name) + ": expected an integer in " + std::to_string(lo) +
                           ".." + std::to_string(hi) + ", got \"" + shown + "\"");
  }
  return n;
}

Result<int64_t> parseIntParamOr(const std::optional<std::string>& text, std::string_view where,
                                std::string_view name, int64_t lo, int64_t hi, int64_t fallback) {
  if (!text) return fallback;
  return parseIntParam(*text, where, name, lo, hi);
}

}  // namespace mercato
