#include "common/status.hpp"

#include <array>

namespace mercato {
namespace {
struct CodeInfo {
  Code code;
  std::string_view name;
  int http;
};
constexpr std::array<CodeInfo, 14> kCodes{{
    {Code::kOk, "ok", 200},
    {Code::kInvalidArgument, "invalid_argument", 400},
    {Code::kUnauthenticated, "unauthenticated", 401},
    {Code::kPermissionDenied, "permission_denied", 403},
    {Code::kNotFound, "not_found", 404},
    {Code::kAlreadyExists, "already_exists", 409},
    {Code::kFailedPrecondition, "failed_precondition", 409},
    {Code::kPaymentRequired, "payment_required", 402},
    {Code::kTooLarge, "too_large", 413},
    {Code::kResourceExhausted, "resource_exhausted", 429},
    {Code::kDeadlineExceeded, "deadline_exceeded", 504},
    {Code::kUnavailable, "unavailable", 503},
    {Code::kUnimplemented, "unimplemented", 501},
    {Code::kInternal, "internal", 500},
}};
}  // namespace

std::string_view codeName(Code c) {
  for (const auto& i : kCodes)
    if (i.code == c) return i.name;
  return "internal";
}

Code codeFromName(std::string_view name) {
  for (const auto& i : kCodes)
    if (i.name == name) return i.code;
  return Code::kInternal;
}

int httpStatusFor(Code c) {
  for (const auto& i : kCodes)
    if (i.code == c) return i.http;
  return 500;
}

std::string Status::toString() const {
  if (isOk()) return "ok";
  std::string s(codeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status Status::withContext(std::string_view context) const {
  if (isOk()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

}  // namespace mercato
