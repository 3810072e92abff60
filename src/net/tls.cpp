// Self-signed Ed25519 certificates bound to node identities (see tls.hpp), with OpenSSL 3.
#include "net/tls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <memory>

#include "net/tls_internal.hpp"

namespace mercato::net {
namespace {

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

// The most recent OpenSSL error, for messages.
std::string sslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Status sslFailure(const std::string& what) { return internalError(what + ": " + sslError()); }

std::string bioToString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

Status addExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return sslFailure(std::string("certificate extension ") + OBJ_nid2sn(nid));
  }
  return Status::ok();
}

// subjectAltName from a list: entries that parse as IPv4/IPv6 become IP SANs, the rest DNS.
Status addAltNames(X509* cert, const std::vector<std::string>& altNames) {
  if (altNames.empty()) return Status::ok();
  NamesPtr names(GENERAL_NAMES_new());
  if (!names) return sslFailure("subjectAltName");
  for (const std::string& name : altNames) {
    if (name.empty()) return invalidArgument("certificate altNames: empty entry");
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (!gn) return sslFailure("subjectAltName");
    if (ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str())) {
      GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    } else {
      ERR_clear_error();
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (!dns || ASN1_STRING_set(dns, name.data(), static_cast<int>(name.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        GENERAL_NAME_free(gn);
        return sslFailure("subjectAltName");
      }
      GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(names.get(), gn) == 0) {
      GENERAL_NAME_free(gn);
      return sslFailure("subjectAltName");
    }
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return sslFailure("subjectAltName");
  }
  return Status::ok();
}

}  // namespace

Result<crypto::PublicKey> x509PublicKey(X509* cert) {
  EVP_PKEY* key = cert ? X509_get0_pubkey(cert) : nullptr;
  if (!key) return invalidArgument("certificate has no readable public key");
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    return invalidArgument(
        "certificate key is not Ed25519 (node certificates carry the node's "
        "Ed25519 identity key)");
  }
  crypto::PublicKey out;
  size_t len = out.bytes.size();
  if (EVP_PKEY_get_raw_public_key(key, out.bytes.data(), &len) != 1 || len != out.bytes.size()) {
    return sslFailure("reading the certificate's Ed25519 key");
  }
  return out;
}

Result<CertificateBundle> makeIdentityCertificate(const crypto::Identity& identity,
                                                  const std::string& commonName,
                                                  const std::vector<std::string>& altNames,
                                                  int days) {
  if (days <= 0) return invalidArgument("certificate validity must be at least 1 day");
  if (commonName.empty()) return invalidArgument("certificate common name must not be empty");
  const auto seed = identity.seed();
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!key) return sslFailure("loading the Ed25519 identity key");

  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return sslFailure("creating a certificate");

  // A random positive 127-bit serial (RFC 5280 allows up to 20 octets).
  unsigned char serialBytes[16];
  if (RAND_bytes(serialBytes, sizeof serialBytes) != 1) return sslFailure("random serial");
  serialBytes[0] &= 0x7f;
  serialBytes[0] |= 0x01;  // never zero
  BnPtr serial(BN_bin2bn(serialBytes, sizeof serialBytes, nullptr));
  if (!serial || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return sslFailure("certificate serial");
  }

  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr)) {
    return sslFailure("certificate validity");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(commonName.c_str()),
                                 static_cast<int>(commonName.size()), -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), subject) != 1) {
    return sslFailure("certificate subject");
  }
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return sslFailure("certificate key");

  RETURN_IF_ERROR(addExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(addExtension(cert.get(), NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(addExtension(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  RETURN_IF_ERROR(addExtension(cert.get(), NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(addAltNames(cert.get(), altNames));

  // Ed25519 signs the whole message: no separate digest.
  if (X509_sign(cert.get(), key.get(), nullptr) <= 0) return sslFailure("signing the certificate");

  // The key in the certificate must be the identity's: anything else breaks pinning.
  ASSIGN_OR_RETURN(crypto::PublicKey certKey, x509PublicKey(cert.get()));
  if (!(certKey == identity.publicKey())) {
    return internalError("certificate key does not match the identity's public key");
  }

  BioPtr certBio(BIO_new(BIO_s_mem()));
  BioPtr keyBio(BIO_new(BIO_s_mem()));
  if (!certBio || !keyBio || PEM_write_bio_X509(certBio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(keyBio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1) {
    return sslFailure("writing PEM");
  }
  return CertificateBundle{bioToString(certBio.get()), bioToString(keyBio.get())};
}

Result<crypto::PublicKey> certificatePublicKey(const std::string& certificatePem) {
  BioPtr bio(BIO_new_mem_buf(certificatePem.data(), static_cast<int>(certificatePem.size())));
  if (!bio) return sslFailure("reading PEM");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return invalidArgument("not a PEM certificate (expected -----BEGIN CERTIFICATE-----)");
  }
  return x509PublicKey(cert.get());
}

}  // namespace mercato::net
