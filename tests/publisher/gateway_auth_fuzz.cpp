// Fuzzes what a provider gateway parses from untrusted callers before any other check: the
// Mercato-Sig Authorization header, macaroon tokens, and receipts (the publisher parses the
// provider's). Every input must give a Status, never a crash. The first byte picks the parser.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "crypto/keys.hpp"
#include "publisher/gateway_auth.hpp"
#include "publisher/receipt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool init = (mercato::crypto::initCrypto(), true);
  (void)init;
  if (size == 0) return 0;
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  static const std::array<uint8_t, 32> secret{};
  switch (data[0] % 3) {
    case 0:
      (void)mercato::publisher::verifyRequestSignature(input, "GET", "/gateway/v1/deployments", "",
                                                       1'800'000'000'000);
      break;
    case 1:
      (void)mercato::publisher::verifyMacaroon(secret, input, "d123", "read", 1'800'000'000'000);
      (void)mercato::publisher::attenuateMacaroon(input, "ops = read");
      break;
    case 2: {
      auto j = nlohmann::json::parse(input, nullptr, false);
      if (!j.is_discarded()) (void)mercato::publisher::receiptFromJson(j);
      break;
    }
  }
  return 0;
}
