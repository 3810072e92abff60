// Message helpers shared by the server, the client and handlers (see http.hpp).
#include "net/http.hpp"

#include <sodium.h>
#include <strings.h>

#include <algorithm>

namespace mercato::net {

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
  const size_t n = std::min(a.size(), b.size());
  const int c = ::strncasecmp(a.data(), b.data(), n);
  if (c != 0) return c < 0;
  return a.size() < b.size();
}

std::string HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool HttpRequest::hasBearerToken(const std::string& token) const {
  if (token.empty()) return false;
  const std::string got = header("Authorization");
  const std::string want = "Bearer " + token;
  return got.size() == want.size() && sodium_memcmp(got.data(), want.data(), want.size()) == 0;
}

std::optional<std::string> HttpRequest::queryParam(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

Result<nlohmann::json> HttpRequest::jsonBody() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    return invalidArgument("request body is not valid JSON: syntax error at byte " +
                           std::to_string(e.byte) + " (expected a JSON document)");
  }
}

HttpResponse HttpResponse::json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.headers["Content-Type"] = "application/json";
  // Replace invalid UTF-8 instead of throwing: a handler's bad string must not become a crash.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse HttpResponse::text(int status, std::string body, std::string contentType) {
  HttpResponse r;
  r.status = status;
  r.headers["Content-Type"] = std::move(contentType);
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(const Status& status) {
  const Code code = status.isOk() ? Code::kInternal : status.code();
  return error(httpStatusFor(code), codeName(code), status.message());
}

HttpResponse HttpResponse::error(int httpStatus, std::string_view code, std::string_view message) {
  nlohmann::json body = {
      {"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
  return json(httpStatus, body);
}

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Codes for HTTP statuses whose error body carries no recognizable code.
Code codeForHttpStatus(int httpStatus) {
  switch (httpStatus) {
    case 400:
      return Code::kInvalidArgument;
    case 401:
      return Code::kUnauthenticated;
    case 402:
      return Code::kPaymentRequired;
    case 403:
      return Code::kPermissionDenied;
    case 404:
      return Code::kNotFound;
    case 409:
      return Code::kFailedPrecondition;
    case 413:
    case 431:
      return Code::kTooLarge;
    case 429:
      return Code::kResourceExhausted;
    case 501:
      return Code::kUnimplemented;
    case 503:
      return Code::kUnavailable;
    case 504:
      return Code::kDeadlineExceeded;
    default:
      return httpStatus >= 400 && httpStatus < 500 ? Code::kInvalidArgument : Code::kInternal;
  }
}

}  // namespace

std::string urlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < s.size()) {
      const int hi = hexValue(s[i + 1]), lo = hexValue(s[i + 2]);
      if (hi < 0 || lo < 0) {
        out += c;  // invalid escape: kept literally
      } else {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
      }
    } else {
      out += c;
    }
  }
  return out;
}

std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::map<std::string, std::string> parseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string key = urlDecode(pair.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? std::string() : urlDecode(pair.substr(eq + 1));
    out.insert_or_assign(std::move(key), std::move(value));  // the last occurrence wins
  }
  return out;
}

Status statusFromErrorResponse(int httpStatus, std::string_view body) {
  if (httpStatus >= 200 && httpStatus < 300) return Status::ok();
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    auto err = j.find("error");
    if (err != j.end() && err->is_object()) {
      auto code = err->find("code");
      auto message = err->find("message");
      if (code != err->end() && code->is_string()) {
        Code c = codeFromName(code->get<std::string>());
        if (c == Code::kOk) c = Code::kInternal;  // an error body never means success
        std::string msg = message != err->end() && message->is_string()
                              ? message->get<std::string>()
                              : std::string("HTTP ") + std::to_string(httpStatus);
        return Status(c, std::move(msg));
      }
    }
  }
  constexpr size_t kMaxQuoted = 200;
  std::string msg = "HTTP " + std::to_string(httpStatus);
  if (!body.empty()) {
    msg += ": ";
    msg += body.substr(0, kMaxQuoted);
    if (body.size() > kMaxQuoted) msg += "...";
  }
  return Status(codeForHttpStatus(httpStatus), std::move(msg));
}

}  // namespace mercato::net
