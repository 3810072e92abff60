// Keystore: one identity per file, written with mode 0600.
//
// Format (JSON, version 1):
//   {"version":1, "address":"mer1...", "public_key":"<hex>",
//    "kdf":"none", "seed":"<hex>"}                                          (unencrypted)
//   {"version":1, "address":..., "public_key":..., "kdf":"argon2id",
//    "opslimit":N, "memlimit":N, "salt":"<hex16>", "nonce":"<hex24>",
//    "ciphertext":"<hex>"}        (seed sealed with XChaCha20-Poly1305 under Argon2id(passphrase))
//
// Thread-safety: pure functions over files; callers serialize writes to the same path.
#pragma once

#include <optional>
#include <string>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::crypto {

struct KeystoreOptions {
  // When set, the seed is encrypted under a key derived from it with Argon2id.
  std::optional<std::string> passphrase;
  // Argon2id cost; tests lower these. Defaults are libsodium's INTERACTIVE limits.
  unsigned long long opslimit = 2;
  size_t memlimit = 64u << 20;
};

// Writes the keystore atomically (temp file + rename), mode 0600. Fails if `path` exists
// unless `overwrite`.
Status saveKeystore(const std::string& path, const Identity& id, const KeystoreOptions& opts,
                    bool overwrite = false);
// Reads a keystore. A wrong passphrase, a missing passphrase for an encrypted file, a
// corrupted file or a public key that does not match the seed each give a distinct error.
Result<Identity> loadKeystore(const std::string& path,
                              const std::optional<std::string>& passphrase = std::nullopt);
// True when the file at `path` is passphrase-encrypted.
Result<bool> keystoreIsEncrypted(const std::string& path);

}  // namespace mercato::crypto
