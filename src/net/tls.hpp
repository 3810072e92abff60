// TLS certificates bound to node identities.
//
// A node's certificate is self-signed with its own Ed25519 key (OpenSSL supports Ed25519
// X.509 certificates and TLS 1.3 signatures), so the certificate's public key *is* the node's
// identity key as listed in the registry. Clients pin that key instead of trusting a CA.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::net {

struct CertificateBundle {
  std::string certificatePem;
  std::string privateKeyPem;
};

// A self-signed X.509 certificate for `identity`, valid for `days`, with the subject CN and
// subjectAltNames (DNS names and IPs) given.
Result<CertificateBundle> makeIdentityCertificate(const crypto::Identity& identity,
                                                  const std::string& commonName,
                                                  const std::vector<std::string>& altNames,
                                                  int days = 365);
// The Ed25519 public key inside a PEM certificate; fails for non-Ed25519 certificates.
Result<crypto::PublicKey> certificatePublicKey(const std::string& certificatePem);

}  // namespace mercato::net
