// Sealed envelopes: a payload encrypted to a recipient and signed by the sender.
//
// The recipient's X25519 key is derived from its Ed25519 public key
// (crypto_sign_ed25519_pk_to_curve25519), so a provider's registered node key is all a
// publisher needs. Each envelope uses a fresh ephemeral X25519 key; the symmetric key is
// BLAKE2b-256(X25519(eph, recipient) || eph_pk || recipient_x25519_pk). The payload is
// encrypted with libsodium's secretstream (XChaCha20-Poly1305) in chunks, whose final tag makes
// truncation detectable. The sender signs the header and every ciphertext chunk (through a
// running BLAKE2b hash), so any change, reordering, a wrong recipient or a cut is a clean error.
//
// Wire format (all integers big-endian), documented in docs/protocols.md:
//   magic "MENV" | version u8 (=1) | sender Ed25519 pk [32] | recipient Ed25519 pk [32]
//   | ephemeral X25519 pk [32] | secretstream header [24]
//   | repeated: chunk length u32 | chunk ciphertext (plaintext <= 64 KiB + 17 bytes)
//   | signature [64] over BLAKE2b-256 of everything before it
//
// Thread-safety: pure functions / single-threaded value objects.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::crypto {

inline constexpr size_t kEnvelopeChunk = 64 * 1024;

// Seals `payload` from `sender` to `recipient` (an Ed25519 public key).
Result<std::string> sealEnvelope(const Identity& sender, const PublicKey& recipient,
                                 std::string_view payload);

struct OpenedEnvelope {
  PublicKey sender;
  std::string payload;
};

// Opens an envelope addressed to `recipient`. When `expectedSender` is set, a different
// signer is an error. Errors: kInvalidArgument for malformed/truncated input, kUnauthenticated
// for a bad signature or failed decryption, kPermissionDenied for a wrong recipient or sender.
Result<OpenedEnvelope> openEnvelope(const Identity& recipient, std::string_view envelope,
                                    const std::optional<PublicKey>& expectedSender = std::nullopt);

}  // namespace mercato::crypto
