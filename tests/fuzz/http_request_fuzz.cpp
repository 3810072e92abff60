// Fuzz target: the server's request parsing path over arbitrary bytes. parseRequest() runs the
// same steps as the server's connection loop (Beast request_parser with the server's limits,
// header-count check, conversion to HttpRequest), once with the default limits and once with
// tiny ones so the 413/431 paths are reached. The query and path decoders and the router get
// the same bytes. Nothing may crash; a parsed request must be internally consistent, and every
// refusal must be a 4xx JSON error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/http.hpp"
#include "net/request.hpp"
#include "net/server.hpp"

using namespace mercato::net;

namespace {

void check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "http_request_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

const Router& router() {
  static const Router r = [] {
    Router r;
    r.add("GET", "/ledger/v1/accounts/{address}",
          [](const HttpRequest&) { return HttpResponse{}; });
    r.add("POST", "/ledger/v1/tx", [](const HttpRequest&) { return HttpResponse{}; });
    return r;
  }();
  return r;
}

void checkOutcome(const ParseOutcome& out, std::string_view input, const RequestLimits& limits) {
  check(!(out.request && out.error), "both a request and an error");
  check(out.consumed <= input.size(), "consumed more than the input");
  if (out.request) {
    const HttpRequest& req = *out.request;
    check(!req.method.empty(), "empty method");
    check(!req.target.empty() && req.target.front() == '/', "target not origin-form");
    check(req.body.size() <= limits.maxBodyBytes, "body over the limit");
    check(req.headers.size() <= limits.maxHeaderCount, "more headers than the limit");
    Router::Match m = router().match(req.method, req.path);
    check(!m.handler || m.pathKnown, "a matched handler must have a known path");
  }
  if (out.error) {
    check(out.error->status >= 400 && out.error->status < 500, "refusal is not a 4xx");
    auto body = nlohmann::json::parse(out.error->body, nullptr, false);
    check(body.is_object() && body.contains("error"), "refusal is not a JSON error");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const RequestLimits defaults;
  checkOutcome(parseRequest(input, defaults), input, defaults);
  RequestLimits tiny;
  tiny.maxBodyBytes = 16;
  tiny.maxHeaderBytes = 128;
  tiny.maxHeaderCount = 3;
  checkOutcome(parseRequest(input, tiny), input, tiny);

  // Decoders: total functions, and encoding round-trips.
  (void)parseQuery(input);
  (void)pathDecode(input);
  const std::string decoded = urlDecode(input);
  check(decoded.size() <= input.size(), "urlDecode grew the input");
  check(urlDecode(urlEncode(input)) == input, "urlEncode does not round-trip");
  (void)router().match("GET", std::string(input));
  return 0;
}
