#include "crypto/keys.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/strings.hpp"
#include "crypto/address.hpp"

namespace mercato::crypto {

void initCrypto() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) {
      std::fprintf(stderr, "mercato: libsodium failed to initialize (no randomness source?)\n");
      std::abort();
    }
  });
}

namespace {

template <size_t N>
Result<std::array<uint8_t, N>> fixedFromHex(std::string_view hex, std::string_view what) {
  auto bytes = fromHex(hex);
  if (!bytes.isOk()) return bytes.status().withContext(what);
  if (bytes->size() != N) {
    return invalidArgument(std::string(what) + ": expected " + std::to_string(N) + " bytes (" +
                           std::to_string(2 * N) + " hex characters), got " +
                           std::to_string(bytes->size()) + " bytes");
  }
  std::array<uint8_t, N> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

}  // namespace

std::string PublicKey::hex() const { return toHex(std::span<const uint8_t>(bytes)); }

Result<PublicKey> PublicKey::fromHex(std::string_view hex) {
  ASSIGN_OR_RETURN(auto bytes, fixedFromHex<32>(hex, "public key"));
  return PublicKey{bytes};
}

std::string Signature::hex() const { return toHex(std::span<const uint8_t>(bytes)); }

Result<Signature> Signature::fromHex(std::string_view hex) {
  ASSIGN_OR_RETURN(auto bytes, fixedFromHex<64>(hex, "signature"));
  return Signature{bytes};
}

bool verify(const PublicKey& key, std::string_view message, const Signature& sig) {
  initCrypto();
  return crypto_sign_verify_detached(sig.bytes.data(),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), key.bytes.data()) == 0;
}

Identity Identity::generate() {
  initCrypto();
  Identity id;
  crypto_sign_keypair(id.pk_.bytes.data(), id.sk_.data());
  return id;
}

Result<Identity> Identity::fromSeed(std::span<const uint8_t> seed) {
  initCrypto();
  if (seed.size() != crypto_sign_SEEDBYTES) {
    return invalidArgument("identity seed: expected " + std::to_string(crypto_sign_SEEDBYTES) +
                           " bytes, got " + std::to_string(seed.size()));
  }
  Identity id;
  crypto_sign_seed_keypair(id.pk_.bytes.data(), id.sk_.data(), seed.data());
  return id;
}

// A moved-from Identity holds an all-zero key pair; the source's secret is wiped.
Identity::Identity(Identity&& other) noexcept : pk_(other.pk_), sk_(other.sk_) {
  sodium_memzero(other.sk_.data(), other.sk_.size());
  other.pk_ = PublicKey{};
}

Identity& Identity::operator=(Identity&& other) noexcept {
  if (this != &other) {
    pk_ = other.pk_;
    sk_ = other.sk_;
    sodium_memzero(other.sk_.data(), other.sk_.size());
    other.pk_ = PublicKey{};
  }
  return *this;
}

Identity::~Identity() { sodium_memzero(sk_.data(), sk_.size()); }

Identity Identity::clone() const {
  Identity copy;
  copy.pk_ = pk_;
  copy.sk_ = sk_;
  return copy;
}

std::string Identity::address() const { return addressFromPublicKey(pk_); }

Signature Identity::sign(std::string_view message) const {
  Signature sig;
  crypto_sign_detached(sig.bytes.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       sk_.data());
  return sig;
}

}  // namespace mercato::crypto
