// Private to mercato_net: OpenSSL helpers shared by tls.cpp and the client's key pinning.
//
// Thread-safety: pure functions.
#pragma once

#include <openssl/x509.h>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::net {

// The raw Ed25519 public key of `cert`; fails for other key types.
Result<crypto::PublicKey> x509PublicKey(X509* cert);

}  // namespace mercato::net
