// Plain HTTP message types shared by the server, the client and every service's handlers.
// They carry no Boost types, so handler code does not pull Beast/Asio into its translation
// unit.
//
// Errors are always JSON: {"error": {"code": "<code name>", "message": "<text>"}} with the
// HTTP status that the Status code maps to (common/status.hpp).
//
// Thread-safety: value types.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"

namespace mercato::net {

// Header names compare case-insensitively.
struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // raw request target, "/ledger/v1/events?after=3"
  std::string path;    // decoded path without the query, "/ledger/v1/events"
  std::map<std::string, std::string> query;   // decoded query parameters
  std::map<std::string, std::string> params;  // route parameters, filled by the Router
  Headers headers;
  std::string body;
  std::string remoteAddress;  // "127.0.0.1:53422"

  std::string header(const std::string& name) const;  // "" when absent
  // True when Authorization is exactly "Bearer <token>", compared in constant time. An empty
  // token never matches.
  bool hasBearerToken(const std::string& token) const;
  std::optional<std::string> queryParam(const std::string& name) const;
  // Parses the body as JSON; the error names the byte offset that failed.
  Result<nlohmann::json> jsonBody() const;
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;

  static HttpResponse json(int status, const nlohmann::json& body);
  static HttpResponse text(int status, std::string body,
                           std::string contentType = "text/plain; charset=utf-8");
  // The JSON error body for a non-OK status, with the mapped HTTP status.
  static HttpResponse error(const Status& status);
  static HttpResponse error(int httpStatus, std::string_view code, std::string_view message);
};

// Decodes %XX and '+' in a query component. Invalid escapes are kept literally.
std::string urlDecode(std::string_view s);
std::string urlEncode(std::string_view s);
// Splits "a=1&b=two" into a decoded map.
std::map<std::string, std::string> parseQuery(std::string_view query);

// Turns an error response body back into a Status (used by clients).
Status statusFromErrorResponse(int httpStatus, std::string_view body);

}  // namespace mercato::net
