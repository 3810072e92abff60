#include "provider/facade/forwarding.hpp"

namespace mercato::provider::facade_detail {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && beast::iequals(beast::string_view(a.data(), a.size()),
                                                beast::string_view(b.data(), b.size()));
}

// Calls fn(token) for each comma-separated token of every `name` field (trimmed, case as
// sent). No allocation: this runs on every request and response.
template <class Fn>
void forEachToken(const http::fields& f, http::field name, Fn&& fn) {
  const auto range = f.equal_range(name);
  for (auto field = range.first; field != range.second; ++field) {
    std::string_view v = sv(field->value());
    while (!v.empty()) {
      const size_t comma = v.find(',');
      std::string_view t = v.substr(0, comma);
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
      if (!t.empty()) fn(t);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
}

// Connection tokens that name no field for us to strip: options, or fields Beast frames itself.
bool namesNoStrippedField(std::string_view t) {
  for (std::string_view keep : {"close", "keep-alive", "upgrade", "transfer-encoding",
                                "content-length", "host", "connection"}) {
    if (iequals(t, keep)) return true;
  }
  return false;
}

}  // namespace

bool hasToken(const http::fields& f, http::field name, std::string_view token) {
  bool found = false;
  forEachToken(f, name, [&](std::string_view t) { found = found || iequals(t, token); });
  return found;
}

// RFC 9110 7.6.1: Connection and the fields it names, plus the classic hop-by-hop set.
// Transfer-Encoding stays: Beast frames the body from it and re-frames it on output.
void stripHopByHop(http::fields& f, bool keepUpgrade) {
  if (f.count(http::field::connection) > 0) {
    // Collected first (erasing while walking Connection's values would invalidate them). Most
    // messages name only options, so the vector stays empty and allocates nothing.
    std::vector<std::string> named;
    forEachToken(f, http::field::connection, [&](std::string_view t) {
      if (!namesNoStrippedField(t)) named.emplace_back(t);
    });
    for (const std::string& name : named) f.erase(name);
    f.erase(http::field::connection);
  }
  f.erase(http::field::keep_alive);
  f.erase(http::field::proxy_connection);
  f.erase(http::field::proxy_authenticate);
  f.erase(http::field::proxy_authorization);
  f.erase(http::field::te);
  f.erase(http::field::trailer);
  if (!keepUpgrade) f.erase(http::field::upgrade);
}

bool isIdempotent(http::verb v) {
  switch (v) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::trace:
      return true;
    default:
      return false;
  }
}

// Body relay buffers live on the heap for the duration of one body only (not in the
// coroutine frame), sized to the body when it is known to be small.
size_t relayChunkSize(boost::optional<uint64_t> contentLength) {
  if (contentLength && *contentLength < kRelayChunk) {
    return std::max<size_t>(static_cast<size_t>(*contentLength), 1);
  }
  return kRelayChunk;
}

// A failure after which nothing was received: the signature of a pooled connection the
// upstream closed while it sat idle.
bool isStaleConnectionError(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == http::error::partial_message;
}

ForwardedRequest prepareUpstreamRequest(http::request<http::buffer_body>& req,
                                        const std::string& remoteIp, const std::string& target,
                                        const std::string& prefix) {
  ForwardedRequest f;
  f.keepAlive = req.keep_alive();
  f.version = req.version();
  f.upgrade =
      req.count(http::field::upgrade) > 0 && hasToken(req, http::field::connection, "upgrade");
  f.expectContinue = beast::iequals(req[http::field::expect], "100-continue");
  f.idempotent = isIdempotent(req.method());
  f.isHead = req.method() == http::verb::head;
  const std::string originalHost(sv(req[http::field::host]));
  stripHopByHop(req, f.upgrade);
  req.erase(http::field::expect);  // the facade answers 100-continue itself
  {
    std::string xff(sv(req["X-Forwarded-For"]));
    req.set("X-Forwarded-For", xff.empty() ? remoteIp : xff + ", " + remoteIp);
  }
  if (!originalHost.empty()) req.set("X-Forwarded-Host", originalHost);
  req.set("X-Forwarded-Proto", "http");
  if (!prefix.empty()) req.set("X-Forwarded-Prefix", prefix);
  req.target(target);
  req.version(11);
  if (f.upgrade) req.set(http::field::connection, "Upgrade");
  return f;
}

}  // namespace mercato::provider::facade_detail
