#include "crypto/address.hpp"

#include <sodium.h>

#include <algorithm>

#include "crypto/hash.hpp"

namespace mercato::crypto {

namespace {

constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
constexpr size_t kH160Bytes = 20;
constexpr size_t kChecksumBytes = 4;
constexpr size_t kAddressBytes = kH160Bytes + kChecksumBytes;
constexpr std::string_view kChecksumDomain = "mercato-address";

int base32Value(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

std::array<uint8_t, kChecksumBytes> checksumOf(std::span<const uint8_t> h160) {
  Hash256 full =
      Hasher()
          .update(kChecksumDomain)
          .update(std::string_view(reinterpret_cast<const char*>(h160.data()), h160.size()))
          .finish();
  std::array<uint8_t, kChecksumBytes> out{};
  std::copy_n(full.begin(), kChecksumBytes, out.begin());
  return out;
}

}  // namespace

std::string base32Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

// Strict decoding: lowercase only, no padding, and the unused low bits of the last character
// must be zero. Each byte string then has exactly one encoding, so a changed character can never
// decode to the same bytes (which the address checksum relies on).
Result<std::string> base32Decode(std::string_view text) {
  // Unpadded RFC 4648 lengths: 8 characters per 5 bytes; a tail of 1, 3 or 6 characters is
  // never produced by an encoder.
  size_t tail = text.size() % 8;
  if (tail == 1 || tail == 3 || tail == 6) {
    return invalidArgument("base32: length " + std::to_string(text.size()) +
                           " is not a valid unpadded base32 length");
  }
  std::string out;
  out.reserve(text.size() * 5 / 8);
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int v = base32Value(text[i]);
    if (v < 0) {
      return invalidArgument("base32: invalid character '" + std::string(1, text[i]) +
                             "' at position " + std::to_string(i) +
                             " (expected a-z or 2-7, lowercase, no padding)");
    }
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) {
    return invalidArgument("base32: non-zero padding bits in the last character");
  }
  return out;
}

std::string addressFromPublicKey(const PublicKey& key) {
  initCrypto();
  std::array<uint8_t, kAddressBytes> raw{};
  crypto_generichash(raw.data(), kH160Bytes, key.bytes.data(), key.bytes.size(), nullptr, 0);
  auto sum = checksumOf(std::span<const uint8_t>(raw.data(), kH160Bytes));
  std::copy(sum.begin(), sum.end(), raw.begin() + kH160Bytes);
  return std::string(kAddressPrefix) +
         base32Encode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

Status validateAddress(std::string_view address) {
  if (address.substr(0, kAddressPrefix.size()) != kAddressPrefix) {
    return invalidArgument("address: must start with \"" + std::string(kAddressPrefix) + "\"");
  }
  std::string_view body = address.substr(kAddressPrefix.size());
  for (size_t i = 0; i < body.size(); ++i) {
    if (base32Value(body[i]) < 0) {
      return invalidArgument("address: bad encoding: invalid character '" +
                             std::string(1, body[i]) + "' at position " +
                             std::to_string(kAddressPrefix.size() + i) +
                             " (expected lowercase base32: a-z, 2-7)");
    }
  }
  constexpr size_t kBodyChars = (kAddressBytes * 8 + 4) / 5;
  if (body.size() != kBodyChars) {
    return invalidArgument("address: wrong length: expected " +
                           std::to_string(kAddressPrefix.size() + kBodyChars) +
                           " characters, got " + std::to_string(address.size()));
  }
  auto decoded = base32Decode(body);
  if (!decoded.isOk()) return decoded.status().withContext("address: bad encoding");
  auto raw =
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(decoded->data()), decoded->size());
  auto expected = checksumOf(raw.first(kH160Bytes));
  if (!std::equal(expected.begin(), expected.end(), raw.begin() + kH160Bytes)) {
    return invalidArgument("address: checksum mismatch (typo in the address?)");
  }
  return Status::ok();
}

}  // namespace mercato::crypto
