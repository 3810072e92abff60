// Fuzz target: openEnvelope over arbitrary bytes, with a fixed recipient identity (the seed of
// 0x52 bytes, matching the corpus generator in tests/crypto/envelope_test.cpp). It must never
// crash, read out of bounds or allocate without bound, and a successful open must mean the
// sender's signature covers everything before the last 64 bytes.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "crypto/envelope.hpp"
#include "crypto/hash.hpp"

using namespace mercato::crypto;

namespace {

Identity fixedIdentity(uint8_t fill) {
  std::array<uint8_t, 32> seed{};
  seed.fill(fill);
  return std::move(Identity::fromSeed(seed)).value();
}

void check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "envelope_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Identity recipient = fixedIdentity(0x52);
  static const PublicKey sender = fixedIdentity(0x53).publicKey();
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto opened = openEnvelope(recipient, input);
  if (opened.isOk()) {
    check(size >= crypto_sign_BYTES, "opened an envelope shorter than a signature");
    check(opened->payload.size() <= size, "payload larger than the envelope");
    Hash256 digest = blake2b256(input.substr(0, size - crypto_sign_BYTES));
    Signature sig;
    std::copy_n(data + size - crypto_sign_BYTES, crypto_sign_BYTES, sig.bytes.begin());
    check(
        verify(opened->sender,
               std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()), sig),
        "opened an envelope whose signature does not verify");
  }
  auto fromSender = openEnvelope(recipient, input, sender);
  check(!fromSender.isOk() ||
            (opened.isOk() && opened->sender == sender && fromSender->payload == opened->payload),
        "expectedSender changed the outcome inconsistently");
  return 0;
}
