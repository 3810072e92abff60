// Fuzz target: arbitrary bytes as a submitted ledger transaction (the body of POST
// /ledger/v1/txs). Parsing, strict decoding and signature verification must never crash, and a
// decoded transaction must re-encode to a signing form that decodes to the same hash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "crypto/keys.hpp"
#include "ledger/tx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mercato::crypto::initCrypto();
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto tx = mercato::ledger::decodeSignedTx(j);
  if (!tx.isOk()) return 0;
  (void)mercato::ledger::verifySignature(*tx);
  auto again = mercato::ledger::decodeSignedTx(mercato::ledger::toJson(*tx));
  if (!again.isOk() || again->hash != tx->hash) std::abort();
  return 0;
}
