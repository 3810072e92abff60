// Ed25519 identities (libsodium): key pairs, signatures, and the key types that cross module
// boundaries. Every message that crosses a trust boundary is signed with an Identity and
// checked with verify().
//
// An Identity owns its secret key in sodium-guarded memory semantics: the secret is wiped when
// the Identity is destroyed. Copying an Identity copies the secret (deliberately explicit via
// clone()).
//
// Thread-safety: const methods are safe from any thread. initCrypto() must run once before use
// (it is idempotent and thread-safe).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace mercato::crypto {

// Initializes libsodium. Idempotent. Aborts the process if libsodium cannot initialize
// (no usable randomness source), since nothing secure can run without it.
void initCrypto();

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  std::string hex() const;
  static Result<PublicKey> fromHex(std::string_view hex);
  bool operator==(const PublicKey&) const = default;
  auto operator<=>(const PublicKey&) const = default;
};

struct Signature {
  std::array<uint8_t, 64> bytes{};
  std::string hex() const;
  static Result<Signature> fromHex(std::string_view hex);
  bool operator==(const Signature&) const = default;
};

// True when `sig` is a valid Ed25519 signature of `message` by `key`.
bool verify(const PublicKey& key, std::string_view message, const Signature& sig);

class Identity {
 public:
  // A fresh random key pair.
  static Identity generate();
  // The key pair for a 32-byte seed (deterministic; used by tests and the keystore).
  static Result<Identity> fromSeed(std::span<const uint8_t> seed);

  Identity(Identity&&) noexcept;
  Identity& operator=(Identity&&) noexcept;
  Identity(const Identity&) = delete;
  Identity& operator=(const Identity&) = delete;
  ~Identity();
  Identity clone() const;

  const PublicKey& publicKey() const { return pk_; }
  // The checksummed address of this identity's public key (see address.hpp).
  std::string address() const;
  Signature sign(std::string_view message) const;
  // The 32-byte seed. Secret: only the keystore and TLS certificate code read it.
  std::span<const uint8_t, 32> seed() const { return std::span<const uint8_t, 32>(sk_.data(), 32); }
  // The 64-byte libsodium secret key (seed || public key). Secret.
  std::span<const uint8_t, 64> secretKey() const { return sk_; }

 private:
  Identity() = default;
  PublicKey pk_;
  std::array<uint8_t, 64> sk_{};
};

}  // namespace mercato::crypto
