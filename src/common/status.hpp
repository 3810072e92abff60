// Status and Result<T>: the error model at every module boundary.
//
// A Status is either OK or carries a Code and a message that a user can act on: what was wrong,
// where (a field path or file:line) and what was expected. Result<T> holds either a T or a
// non-OK Status. Exceptions from third-party libraries are caught at the parse/IO boundary and
// converted into a Status; they never cross a module interface.
//
// Thread-safety: value types, no shared state.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mercato {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // malformed input: 400
  kUnauthenticated,     // bad or missing signature: 401
  kPermissionDenied,    // signed, but not allowed: 403
  kNotFound,            // 404
  kAlreadyExists,       // 409
  kFailedPrecondition,  // state does not allow it (wrong nonce, overdraft): 409
  kPaymentRequired,     // escrow exhausted: 402
  kTooLarge,            // body or message too large: 413
  kResourceExhausted,   // rate limits, queue full: 429
  kDeadlineExceeded,    // 504
  kUnavailable,         // 503
  kUnimplemented,       // 501
  kInternal,            // 500
};

// Stable lower_snake name of a code, used in JSON errors ("invalid_argument").
std::string_view codeName(Code c);
// Inverse of codeName; unknown names map to kInternal.
Code codeFromName(std::string_view name);
// The HTTP status a code maps to.
int httpStatusFor(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: amount: expected a positive decimal"
  std::string toString() const;
  // Returns a copy whose message is prefixed with `context: `.
  Status withContext(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status invalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status permissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status notFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status alreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status failedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status tooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
inline Status resourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status deadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }
inline Status internalError(std::string m) { return {Code::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).isOk() && "Result built from an OK status");
  }

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }

  // REQUIRES: isOk()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // OK when isOk(), otherwise the error.
  Status status() const { return isOk() ? Status::ok() : std::get<Status>(v_); }
  T valueOr(T fallback) const { return isOk() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mercato

#define MERCATO_CONCAT_INNER(a, b) a##b
#define MERCATO_CONCAT(a, b) MERCATO_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)       \
  do {                              \
    ::mercato::Status _st = (expr); \
    if (!_st.isOk()) return _st;    \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, f());` declares x from a Result or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(MERCATO_CONCAT(_res_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.isOk()) return tmp.status();       \
  lhs = std::move(tmp).value()
