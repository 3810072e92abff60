// Forwarding rules of the facade's proxy, as pure functions over Beast headers: which fields are
// hop-by-hop (RFC 9110 7.6.1), how a client's request header becomes the upstream's
// (X-Forwarded-*, the target without the route prefix, HTTP/1.1), and small relay helpers.
// Header inspection allocates nothing: this runs on every request and response.
//
// Thread-safety: stateless.
#pragma once

#include "provider/facade/facade_core.hpp"

namespace mercato::provider::facade_detail {

// True when a comma-separated `name` field carries `token` (case-insensitive).
bool hasToken(const http::fields& f, http::field name, std::string_view token);

// Removes Connection and the fields it names, plus Keep-Alive, Proxy-Connection,
// Proxy-Authenticate, Proxy-Authorization, TE, Trailer and (unless keepUpgrade) Upgrade.
// Transfer-Encoding stays: Beast frames the body from it and re-frames it on output.
void stripHopByHop(http::fields& f, bool keepUpgrade);

// RFC 9110 9.2.2: a request that may be sent again after a stale pooled connection failed.
bool isIdempotent(http::verb v);

// Body relay buffers live on the heap for one body only, sized to the body when it is small.
size_t relayChunkSize(boost::optional<uint64_t> contentLength);

// A failure after which nothing was received: the signature of a pooled connection the
// upstream closed while it sat idle.
bool isStaleConnectionError(const error_code& ec);

// What the proxy needs to know of the client's request once its header was rewritten.
struct ForwardedRequest {
  bool keepAlive = false;       // the client's, before the rewrite
  unsigned version = 11;        // the client's HTTP version (10 or 11)
  bool upgrade = false;         // Upgrade named in Connection: kept, and Connection: Upgrade
  bool expectContinue = false;  // the facade answers it; the upstream never sees Expect
  bool idempotent = false;
  bool isHead = false;
};

// Rewrites the client's request header in place for the upstream: hop-by-hop fields stripped,
// X-Forwarded-For (appended), -Host, -Proto and -Prefix (when routed by path) set, the target
// replaced by `target`, HTTP/1.1.
ForwardedRequest prepareUpstreamRequest(http::request<http::buffer_body>& req,
                                        const std::string& remoteIp, const std::string& target,
                                        const std::string& prefix);

}  // namespace mercato::provider::facade_detail
