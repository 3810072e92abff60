// Gateway request authorization (docs/protocols.md, "Gateway API"): the two schemes a provider
// gateway accepts on its deployment API.
//
// Mercato-Sig: the caller signs each request with its Ed25519 key.
//   Authorization: Mercato-Sig key=<hex pubkey>,ts=<unix ms>,sig=<hex sig>
//   signed bytes = "mercato-gateway-v1\n" + METHOD + "\n" + target + "\n" + ts + "\n"
//                  + hex(sha256(body))
// `target` is the raw request target as sent on the wire (path + query). The timestamp bounds a
// replay to the skew window; the gateway additionally checks that the key's address owns the
// deployment.
//
// Macaroons: bearer tokens a provider mints for a deployment's owner, so the owner can hand
// read-only (or exec) access to a script or a partner without sharing its key. An HMAC-SHA256
// chain (libsodium crypto_auth_hmacsha256):
//   sig0 = HMAC(secret, id);  sig_i = HMAC(sig_{i-1}, caveat_i)
//   token = base64url(no padding) of {"id": <hex>, "caveats": [..], "sig": <hex sig_n>}
// Caveats are "deployment = ID", "expires = <unix ms>", "ops = read,exec" (a comma list). Every
// caveat must hold; an unknown caveat fails (it may restrict something this verifier does not
// know). Anyone holding a token can append caveats (attenuateMacaroon) but never remove one.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::publisher {

inline constexpr std::string_view kSigScheme = "Mercato-Sig";
inline constexpr std::string_view kMacaroonScheme = "Macaroon";
inline constexpr int64_t kDefaultSkewMs = 300'000;

// The exact bytes a Mercato-Sig signature covers.
std::string requestSigningBytes(std::string_view method, std::string_view target,
                                std::string_view body, int64_t tsMs);

// The Authorization header value ("Mercato-Sig key=..,ts=..,sig=..") for one request.
std::string signRequest(const crypto::Identity& id, std::string_view method,
                        std::string_view target, std::string_view body, int64_t tsMs);

// Checks a Mercato-Sig header value and returns the signer's key. Errors, all
// kUnauthenticated with the reason: malformed header (which part), ts outside
// nowMs ± skewMs (stale or from the future), signature that does not verify.
Result<crypto::PublicKey> verifyRequestSignature(std::string_view headerValue,
                                                 std::string_view method, std::string_view target,
                                                 std::string_view body, int64_t nowMs,
                                                 int64_t skewMs = kDefaultSkewMs);

// Mints a macaroon for `deploymentId`, valid until `expiresMs`, for `ops` ("read", "exec").
// REQUIRES: ops is not empty and no op contains ',' or whitespace.
std::string mintMacaroon(std::span<const uint8_t, 32> secret, const std::string& deploymentId,
                         int64_t expiresMs, const std::vector<std::string>& ops);

// Appends one more caveat (restriction) to a token; no secret needed.
// Errors: kInvalidArgument for a malformed token or caveat.
Result<std::string> attenuateMacaroon(std::string_view token, const std::string& caveat);

// OK when `token` was minted with `secret` (chain intact) and every caveat holds for
// (deploymentId, op, nowMs). A token without a deployment or expires caveat is refused.
// Errors: kUnauthenticated for a malformed or forged token; kPermissionDenied for a valid token
// whose caveats refuse this request (expired, other deployment, op not allowed, unknown caveat).
Status verifyMacaroon(std::span<const uint8_t, 32> secret, std::string_view token,
                      const std::string& deploymentId, const std::string& op, int64_t nowMs);

}  // namespace mercato::publisher
