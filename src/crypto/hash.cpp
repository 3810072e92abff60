#include "crypto/hash.hpp"

#include "common/strings.hpp"
#include "crypto/keys.hpp"

namespace mercato::crypto {

Hash256 blake2b256(std::string_view data) {
  initCrypto();
  Hash256 out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size(), nullptr, 0);
  return out;
}

std::string hashHex(const Hash256& h) { return toHex(std::span<const uint8_t>(h)); }

Hasher::Hasher() {
  initCrypto();
  crypto_generichash_init(&st_, nullptr, 0, sizeof(Hash256));
}

Hasher& Hasher::update(std::string_view data) {
  crypto_generichash_update(&st_, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return *this;
}

Hasher& Hasher::update(const Hash256& h) {
  crypto_generichash_update(&st_, h.data(), h.size());
  return *this;
}

Hasher& Hasher::field(std::string_view data) {
  u64(data.size());
  return update(data);
}

Hasher& Hasher::u64(uint64_t v) {
  uint8_t be[8];
  for (int i = 7; i >= 0; --i) {
    be[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  crypto_generichash_update(&st_, be, sizeof(be));
  return *this;
}

Hash256 Hasher::finish() {
  Hash256 out{};
  crypto_generichash_final(&st_, out.data(), out.size());
  return out;
}

}  // namespace mercato::crypto
