#include "publisher/receipt.hpp"

#include "ledger/tx.hpp"

namespace mercato::publisher {

using nlohmann::json;

namespace {
json unsignedJson(const Receipt& r) {
  return {{"deploymentId", r.deploymentId},
          {"escrowId", r.escrowId},
          {"provider", r.provider},
          {"publisher", r.publisher},
          {"urls", r.urls},
          {"terms", ledger::toJson(r.terms)},
          {"createdAtMs", r.createdAtMs}};
}
}  // namespace

std::string receiptSigningBytes(const Receipt& r) {
  // Only strings and integers: canonicalJson cannot fail here.
  return ledger::canonicalJson(unsignedJson(r)).valueOr("");
}

void signReceipt(Receipt& r, const crypto::Identity& providerNode) {
  r.signature = providerNode.sign(receiptSigningBytes(r)).hex();
}

Status verifyReceipt(const Receipt& r, const crypto::PublicKey& providerNodeKey) {
  const std::string what = "receipt for deployment '" + r.deploymentId + "'";
  if (r.signature.empty()) return unauthenticated(what + ": not signed");
  auto sig = crypto::Signature::fromHex(r.signature);
  if (!sig.isOk()) return unauthenticated(what + ": signature: " + sig.status().message());
  if (!crypto::verify(providerNodeKey, receiptSigningBytes(r), *sig))
    return unauthenticated(what + ": signature does not verify against the provider's node key " +
                           providerNodeKey.hex());
  return Status::ok();
}

json toJson(const Receipt& r) {
  json j = unsignedJson(r);
  j["signature"] = r.signature;
  return j;
}

Result<Receipt> receiptFromJson(const json& j) {
  const std::string where = "receipt";
  if (!j.is_object()) return invalidArgument("receipt: expected a JSON object");
  RETURN_IF_ERROR(ledger::jsonOnlyKeys(j,
                                       {"deploymentId", "escrowId", "provider", "publisher", "urls",
                                        "terms", "createdAtMs", "signature"},
                                       where));
  Receipt r;
  ASSIGN_OR_RETURN(r.deploymentId, ledger::jsonString(j, "deploymentId", where));
  ASSIGN_OR_RETURN(r.escrowId, ledger::jsonString(j, "escrowId", where));
  ASSIGN_OR_RETURN(r.provider, ledger::jsonString(j, "provider", where));
  ASSIGN_OR_RETURN(r.publisher, ledger::jsonString(j, "publisher", where));
  ASSIGN_OR_RETURN(r.createdAtMs, ledger::jsonInt(j, "createdAtMs", where));
  ASSIGN_OR_RETURN(r.signature, ledger::jsonString(j, "signature", where));
  if (!j.contains("urls") || !j["urls"].is_array())
    return invalidArgument("receipt.urls: expected an array of strings");
  for (size_t i = 0; i < j["urls"].size(); ++i) {
    if (!j["urls"][i].is_string())
      return invalidArgument("receipt.urls[" + std::to_string(i) + "]: expected a string");
    r.urls.push_back(j["urls"][i].get<std::string>());
  }
  if (!j.contains("terms")) return invalidArgument("receipt.terms: missing");
  ASSIGN_OR_RETURN(r.terms, ledger::pricesFromJson(j["terms"], "receipt.terms"));
  return r;
}

}  // namespace mercato::publisher
