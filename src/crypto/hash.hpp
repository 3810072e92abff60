// BLAKE2b hashing (libsodium crypto_generichash). Used for the ledger's hash chain, state root,
// ids and address derivation.
//
// Thread-safety: Hasher is a value type used by one thread; the free functions are pure.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mercato::crypto {

using Hash256 = std::array<uint8_t, 32>;

Hash256 blake2b256(std::string_view data);
std::string hashHex(const Hash256& h);

// Incremental BLAKE2b-256.
class Hasher {
 public:
  Hasher();
  Hasher& update(std::string_view data);
  Hasher& update(const Hash256& h);
  // Appends a length-prefixed field, so ("ab","c") and ("a","bc") hash differently.
  Hasher& field(std::string_view data);
  Hasher& u64(uint64_t v);  // big-endian
  Hash256 finish();

 private:
  crypto_generichash_state st_;
};

}  // namespace mercato::crypto
