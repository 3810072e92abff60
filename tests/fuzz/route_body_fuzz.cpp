// Fuzz target: the body and query parsing of the gateway's routes and of the interactive exec
// messages (issue 12, finding 1: a wrong JSON type used to throw on a worker and terminate the
// node). The first byte picks the parser, the rest is the body (or the query string). Nothing
// may throw or crash; every refusal is kInvalidArgument with a message naming where it was.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/http.hpp"
#include "provider/exec_messages.hpp"
#include "provider/gateway_requests.hpp"

using namespace mercato;

namespace {

void check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "route_body_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

template <typename R>
void refusedClearly(const R& r, std::string_view where) {
  if (r.isOk()) return;
  check(r.status().code() == Code::kInvalidArgument, "a refusal is invalid_argument");
  check(r.status().message().rfind(std::string(where), 0) == 0, "the message names the route");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0] % 6;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector) {
    case 0: {
      auto r = provider::parseMacaroonRequest(body);
      refusedClearly(r, "macaroons");
      if (r.isOk()) check(r->ttlSeconds >= 1 && r->ttlSeconds <= 30 * 24 * 3600, "ttl in range");
      break;
    }
    case 1: {
      auto r = provider::parseExecRequest(body, "dep");
      refusedClearly(r, "exec");
      if (r.isOk()) check(!r->args.empty(), "exec has args");
      break;
    }
    case 2: {
      auto r = provider::parseExecStart(body, 16);
      refusedClearly(r, "exec start");
      if (r.isOk()) check(r->rows >= 1 && r->cols >= 1 && r->args.size() <= 16, "start bounds");
      break;
    }
    case 3:
      refusedClearly(provider::parseExecControl(body), "exec control");
      break;
    case 4: {
      net::HttpRequest req;
      req.query = net::parseQuery(body);
      auto r = provider::parseEventsQuery(req);
      refusedClearly(r, "events");
      if (r.isOk()) check(r->waitMs >= 0 && r->waitMs <= 30'000, "wait capped");
      break;
    }
    case 5: {
      net::HttpRequest req;
      req.query = net::parseQuery(body);
      refusedClearly(provider::parseLogsQuery(req), "logs");
      break;
    }
  }
  return 0;
}
