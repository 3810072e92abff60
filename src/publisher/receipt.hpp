// Deployment receipts (docs/protocols.md, "Receipt"): the provider's signed confirmation that it
// accepted a bundle and created the deployment, with the URLs it serves and the price terms it
// will bill under. The publisher keeps it as proof of what the provider promised.
//
//   {"deploymentId", "escrowId", "provider", "publisher", "urls": [...], "terms": <Prices JSON>,
//    "createdAtMs", "signature"}
// `signature` is the provider node key's Ed25519 signature (hex) over the canonical JSON
// (ledger::canonicalJson: keys sorted, no spaces) of every other field.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "ledger/types.hpp"

namespace mercato::publisher {

struct Receipt {
  std::string deploymentId;
  std::string escrowId;
  std::string provider;   // provider owner address
  std::string publisher;  // publisher address
  std::vector<std::string> urls;
  ledger::Prices terms;
  int64_t createdAtMs = 0;
  std::string signature;  // hex; "" until signed
  bool operator==(const Receipt&) const = default;
};

// The bytes the signature covers.
std::string receiptSigningBytes(const Receipt& r);
// Fills r.signature with the provider node's signature.
void signReceipt(Receipt& r, const crypto::Identity& providerNode);
// OK when r.signature is a valid signature by `providerNodeKey` over the other fields.
// Errors: kUnauthenticated (missing, malformed or wrong signature; names the deployment).
Status verifyReceipt(const Receipt& r, const crypto::PublicKey& providerNodeKey);

nlohmann::json toJson(const Receipt& r);
// Strict: every field required with its type, unknown fields are errors naming the path
// ("receipt.terms.cpuSecond: ...").
Result<Receipt> receiptFromJson(const nlohmann::json& j);

}  // namespace mercato::publisher
