// Private to mercato_net: turning untrusted request bytes into an HttpRequest.
//
// The server reads requests incrementally with Beast (beast_request.hpp); parseRequest() runs
// the very same steps over one complete buffer, for the fuzz target and tests. No Beast types
// appear here so that users of this header stay cheap to compile.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "net/http.hpp"

namespace mercato::net {

struct RequestLimits {
  size_t maxBodyBytes = 4 << 20;
  size_t maxHeaderBytes = 16 << 10;
  size_t maxHeaderCount = 64;
};

struct ParseOutcome {
  // Exactly one of these is set when the bytes held a whole request or a definite error;
  // neither is set when the input ends before the request does.
  std::optional<HttpRequest> request;
  std::optional<HttpResponse> error;  // the 400/413/431 answer the server would send
  size_t consumed = 0;                // bytes used by the request
};

// Parses the first request in `bytes` with the server's limits.
ParseOutcome parseRequest(std::string_view bytes, const RequestLimits& limits);

// Percent-decodes a request path ('+' stays '+', invalid escapes are kept literally).
std::string pathDecode(std::string_view s);

}  // namespace mercato::net
