// Addresses: the text form of an account, derived from an Ed25519 public key.
//
//   address = "mer1" + base32(lowercase, RFC 4648 alphabet, no padding) of
//             ( BLAKE2b-160(public key) || first 4 bytes of BLAKE2b-256("mercato-address" || h160) )
//
// The 4-byte checksum catches typos: a single changed character fails validation.
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::crypto {

inline constexpr std::string_view kAddressPrefix = "mer1";

std::string addressFromPublicKey(const PublicKey& key);
// OK when `address` is well formed and its checksum matches; the error says which part failed.
Status validateAddress(std::string_view address);

// RFC 4648 base32 (lowercase, no padding), used by addresses and peer ids.
std::string base32Encode(std::string_view bytes);
Result<std::string> base32Decode(std::string_view text);

}  // namespace mercato::crypto
