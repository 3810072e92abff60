// Private to mercato_net: the parts of connecting that HttpClient and WebSocketClient share.
//
// Thread-safety: pure functions.
#pragma once

#include <openssl/ssl.h>

#include <optional>
#include <string>

#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "net/client.hpp"

namespace mercato::net {

struct BaseUrl {
  bool tls = false;
  std::string host;      // without brackets for IPv6
  std::string port;      // "443"/"80" by default
  std::string basePath;  // "" or "/prefix" (no trailing slash)
};

// Parses "http(s)://host[:port][/prefix]" (ws:// and wss:// too). An https URL needs
// options.pinnedKey or options.insecureSkipVerify.
Result<BaseUrl> parseBaseUrl(const std::string& baseUrl, const ClientOptions& options);

// After a TLS handshake: OK without a pin, else the peer certificate's Ed25519 key must be it.
Status checkPinnedKey(SSL* ssl, const std::optional<crypto::PublicKey>& pinnedKey,
                      const std::string& origin);

}  // namespace mercato::net
