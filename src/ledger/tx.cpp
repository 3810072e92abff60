#include "ledger/tx.hpp"

#include <array>
#include <regex>

#include "common/strings.hpp"
#include "crypto/address.hpp"
#include "crypto/hash.hpp"

namespace mercato::ledger {

using nlohmann::json;

namespace {
constexpr std::array<std::pair<TxKind, std::string_view>, 15> kKinds{{
    {TxKind::kTransfer, "transfer"},
    {TxKind::kMint, "mint"},
    {TxKind::kProviderRegister, "provider.register"},
    {TxKind::kProviderUpdate, "provider.update"},
    {TxKind::kProviderDeregister, "provider.deregister"},
    {TxKind::kEscrowOpen, "escrow.open"},
    {TxKind::kEscrowDeposit, "escrow.deposit"},
    {TxKind::kEscrowClaim, "escrow.claim"},
    {TxKind::kEscrowClose, "escrow.close"},
    {TxKind::kOrderCreate, "order.create"},
    {TxKind::kOrderClose, "order.close"},
    {TxKind::kBidCreate, "bid.create"},
    {TxKind::kBidClose, "bid.close"},
    {TxKind::kLeaseCreate, "lease.create"},
    {TxKind::kAuditorAttest, "auditor.attest"},
}};

constexpr size_t kMaxUrl = 512;

Status checkAddress(const std::string& a, const std::string& field) {
  Status s = crypto::validateAddress(a);
  if (!s.isOk()) return invalidArgument(field + ": " + s.message());
  return Status::ok();
}

Result<Micros> positiveAmount(const json& j, const char* key, const std::string& where) {
  ASSIGN_OR_RETURN(int64_t v, jsonInt(j, key, where));
  if (v <= 0) return invalidArgument(where + "." + key + ": must be greater than zero");
  return v;
}

Result<ProviderBody> providerBodyFromJson(const json& j) {
  const std::string w = "tx.body";
  RETURN_IF_ERROR(
      jsonOnlyKeys(j, {"nodeKey", "gatewayUrl", "attributes", "capacity", "prices"}, w));
  ProviderBody b;
  ASSIGN_OR_RETURN(b.nodeKey, jsonString(j, "nodeKey", w));
  auto pk = crypto::PublicKey::fromHex(b.nodeKey);
  if (!pk.isOk()) return invalidArgument(w + ".nodeKey: expected 64 hex characters (Ed25519 key)");
  ASSIGN_OR_RETURN(b.gatewayUrl, jsonString(j, "gatewayUrl", w));
  if (b.gatewayUrl.size() > kMaxUrl ||
      !(startsWith(b.gatewayUrl, "http://") || startsWith(b.gatewayUrl, "https://")))
    return invalidArgument(w + ".gatewayUrl: expected an http:// or https:// URL under " +
                           std::to_string(kMaxUrl) + " characters");
  if (auto attrs = j.find("attributes"); attrs != j.end()) {
    ASSIGN_OR_RETURN(b.attributes, attributesFromJson(*attrs, w + ".attributes"));
  }
  if (!j.contains("capacity")) return invalidArgument(w + ".capacity: required field is missing");
  ASSIGN_OR_RETURN(b.capacity, capacityFromJson(j["capacity"], w + ".capacity"));
  if (!j.contains("prices")) return invalidArgument(w + ".prices: required field is missing");
  ASSIGN_OR_RETURN(b.prices, pricesFromJson(j["prices"], w + ".prices"));
  return b;
}

void canonicalInto(const json& j, std::string& out, Status& err) {
  switch (j.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      // nlohmann's default object is a std::map: iteration is already sorted bytewise.
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += ',';
        first = false;
        out += json(it.key()).dump();
        out += ':';
        canonicalInto(it.value(), out, err);
      }
      out += '}';
      break;
    }
    case json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < j.size(); ++i) {
        if (i) out += ',';
        canonicalInto(j[i], out, err);
      }
      out += ']';
      break;
    }
    case json::value_t::number_float:
      err = invalidArgument("floating-point numbers are not allowed in transactions");
      break;
    default:
      out += j.dump(-1, ' ', false, json::error_handler_t::strict);
  }
}
}  // namespace

std::string_view txKindName(TxKind k) {
  for (const auto& [kind, name] : kKinds)
    if (kind == k) return name;
  return "unknown";
}

Result<TxKind> parseTxKind(std::string_view name) {
  for (const auto& [kind, n] : kKinds)
    if (n == name) return kind;
  std::string all;
  for (const auto& [kind, n] : kKinds) all += (all.empty() ? "" : ", ") + std::string(n);
  return invalidArgument("tx.kind '" + std::string(name) + "': expected one of " + all);
}

json bodyToJson(const TxBody& body) {
  struct V {
    json operator()(const TransferBody& b) const { return {{"to", b.to}, {"amount", b.amount}}; }
    json operator()(const MintBody& b) const { return {{"to", b.to}, {"amount", b.amount}}; }
    json operator()(const ProviderBody& b) const {
      return {{"nodeKey", b.nodeKey},
              {"gatewayUrl", b.gatewayUrl},
              {"attributes", b.attributes},
              {"capacity", toJson(b.capacity)},
              {"prices", toJson(b.prices)}};
    }
    json operator()(const DeregisterBody&) const { return json::object(); }
    json operator()(const EscrowOpenBody& b) const {
      json j = {{"provider", b.provider}, {"deposit", b.deposit}};
      if (b.expectTerms) j["expectTerms"] = toJson(*b.expectTerms);
      return j;
    }
    json operator()(const EscrowDepositBody& b) const {
      return {{"escrow", b.escrow}, {"amount", b.amount}};
    }
    json operator()(const EscrowClaimBody& b) const {
      return {{"escrow", b.escrow}, {"usage", toJson(b.usage)}};
    }
    json operator()(const EscrowCloseBody& b) const { return {{"escrow", b.escrow}}; }
    json operator()(const OrderCreateBody& b) const {
      return {{"requirements", toJson(b.requirements)},
              {"maxPrice", toJson(b.maxPrice)},
              {"deposit", b.deposit},
              {"ttlMs", b.ttlMs}};
    }
    json operator()(const OrderCloseBody& b) const { return {{"order", b.order}}; }
    json operator()(const BidCreateBody& b) const {
      return {{"order", b.order}, {"price", toJson(b.price)}, {"ttlMs", b.ttlMs}};
    }
    json operator()(const BidCloseBody& b) const { return {{"bid", b.bid}}; }
    json operator()(const LeaseCreateBody& b) const { return {{"bid", b.bid}}; }
    json operator()(const AuditorAttestBody& b) const {
      json attrs = json::object();
      for (const auto& [k, v] : b.attributes) attrs[k] = v;
      return {{"provider", b.provider}, {"attributes", attrs}};
    }
  };
  return std::visit(V{}, body);
}

TxKind defaultKindFor(const TxBody& body) {
  static constexpr std::array<TxKind, 14> kByIndex{
      TxKind::kTransfer,           TxKind::kMint,         TxKind::kProviderRegister,
      TxKind::kProviderDeregister, TxKind::kEscrowOpen,   TxKind::kEscrowDeposit,
      TxKind::kEscrowClaim,        TxKind::kEscrowClose,  TxKind::kOrderCreate,
      TxKind::kOrderClose,         TxKind::kBidCreate,    TxKind::kBidClose,
      TxKind::kLeaseCreate,        TxKind::kAuditorAttest};
  static_assert(kByIndex.size() == std::variant_size_v<TxBody>);
  return kByIndex[body.index()];
}

Result<TxBody> bodyFromJson(TxKind kind, const json& j) {
  const std::string w = "tx.body";
  if (!j.is_object()) return invalidArgument(w + ": expected an object");
  switch (kind) {
    case TxKind::kTransfer:
    case TxKind::kMint: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"to", "amount"}, w));
      ASSIGN_OR_RETURN(std::string to, jsonString(j, "to", w));
      RETURN_IF_ERROR(checkAddress(to, w + ".to"));
      ASSIGN_OR_RETURN(Micros amount, positiveAmount(j, "amount", w));
      if (kind == TxKind::kMint) return TxBody(MintBody{to, amount});
      return TxBody(TransferBody{to, amount});
    }
    case TxKind::kProviderRegister:
    case TxKind::kProviderUpdate: {
      ASSIGN_OR_RETURN(ProviderBody b, providerBodyFromJson(j));
      return TxBody(std::move(b));
    }
    case TxKind::kProviderDeregister:
      RETURN_IF_ERROR(jsonOnlyKeys(j, {}, w));
      return TxBody(DeregisterBody{});
    case TxKind::kEscrowOpen: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"provider", "deposit", "expectTerms"}, w));
      EscrowOpenBody b;
      ASSIGN_OR_RETURN(b.provider, jsonString(j, "provider", w));
      RETURN_IF_ERROR(checkAddress(b.provider, w + ".provider"));
      ASSIGN_OR_RETURN(b.deposit, positiveAmount(j, "deposit", w));
      if (j.contains("expectTerms")) {
        ASSIGN_OR_RETURN(Prices p, pricesFromJson(j["expectTerms"], w + ".expectTerms"));
        b.expectTerms = p;
      }
      return TxBody(std::move(b));
    }
    case TxKind::kEscrowDeposit: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"escrow", "amount"}, w));
      EscrowDepositBody b;
      ASSIGN_OR_RETURN(b.escrow, jsonString(j, "escrow", w));
      ASSIGN_OR_RETURN(b.amount, positiveAmount(j, "amount", w));
      return TxBody(std::move(b));
    }
    case TxKind::kEscrowClaim: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"escrow", "usage"}, w));
      EscrowClaimBody b;
      ASSIGN_OR_RETURN(b.escrow, jsonString(j, "escrow", w));
      if (!j.contains("usage")) return invalidArgument(w + ".usage: required field is missing");
      ASSIGN_OR_RETURN(b.usage, usageFromJson(j["usage"], w + ".usage"));
      return TxBody(std::move(b));
    }
    case TxKind::kEscrowClose: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"escrow"}, w));
      EscrowCloseBody b;
      ASSIGN_OR_RETURN(b.escrow, jsonString(j, "escrow", w));
      return TxBody(std::move(b));
    }
    case TxKind::kOrderCreate: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"requirements", "maxPrice", "deposit", "ttlMs"}, w));
      OrderCreateBody b;
      if (!j.contains("requirements"))
        return invalidArgument(w + ".requirements: required field is missing");
      ASSIGN_OR_RETURN(b.requirements,
                       requirementsFromJson(j["requirements"], w + ".requirements"));
      for (size_t i = 0; i < b.requirements.signedBy.size(); ++i)
        RETURN_IF_ERROR(
            checkAddress(b.requirements.signedBy[i].auditor,
                         w + ".requirements.signedBy[" + std::to_string(i) + "].auditor"));
      if (!j.contains("maxPrice"))
        return invalidArgument(w + ".maxPrice: required field is missing");
      ASSIGN_OR_RETURN(b.maxPrice, priceCapsFromJson(j["maxPrice"], w + ".maxPrice"));
      ASSIGN_OR_RETURN(b.deposit, positiveAmount(j, "deposit", w));
      ASSIGN_OR_RETURN(b.ttlMs, positiveAmount(j, "ttlMs", w));
      return TxBody(std::move(b));
    }
    case TxKind::kOrderClose: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"order"}, w));
      OrderCloseBody b;
      ASSIGN_OR_RETURN(b.order, jsonString(j, "order", w));
      return TxBody(std::move(b));
    }
    case TxKind::kBidCreate: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"order", "price", "ttlMs"}, w));
      BidCreateBody b;
      ASSIGN_OR_RETURN(b.order, jsonString(j, "order", w));
      if (!j.contains("price")) return invalidArgument(w + ".price: required field is missing");
      ASSIGN_OR_RETURN(b.price, pricesFromJson(j["price"], w + ".price"));
      ASSIGN_OR_RETURN(b.ttlMs, positiveAmount(j, "ttlMs", w));
      return TxBody(std::move(b));
    }
    case TxKind::kBidClose: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"bid"}, w));
      BidCloseBody b;
      ASSIGN_OR_RETURN(b.bid, jsonString(j, "bid", w));
      return TxBody(std::move(b));
    }
    case TxKind::kLeaseCreate: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"bid"}, w));
      LeaseCreateBody b;
      ASSIGN_OR_RETURN(b.bid, jsonString(j, "bid", w));
      return TxBody(std::move(b));
    }
    case TxKind::kAuditorAttest: {
      RETURN_IF_ERROR(jsonOnlyKeys(j, {"provider", "attributes"}, w));
      AuditorAttestBody b;
      ASSIGN_OR_RETURN(b.provider, jsonString(j, "provider", w));
      RETURN_IF_ERROR(checkAddress(b.provider, w + ".provider"));
      if (!j.contains("attributes"))
        return invalidArgument(w + ".attributes: required field is missing");
      ASSIGN_OR_RETURN(b.attributes, attributesFromJson(j["attributes"], w + ".attributes"));
      return TxBody(std::move(b));
    }
  }
  return invalidArgument("tx.kind: unsupported");
}

Result<std::string> canonicalJson(const json& j) {
  std::string out;
  Status err;
  try {
    canonicalInto(j, out, err);
  } catch (const json::exception& e) {
    return invalidArgument(std::string("not encodable as canonical JSON: ") + e.what());
  }
  if (!err.isOk()) return err;
  return out;
}

namespace {
// A string as canonicalInto() writes it.
std::string quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::strict);
}

// Transfers and mints are most of the traffic and are encoded on every submission (decode,
// then the log): their canonical text is written directly, without building a JSON tree. It is
// byte for byte what the generic path produces (tx_test compares the two).
std::optional<std::string> amountToSigningBytes(const Tx& tx) {
  const std::string* to = nullptr;
  Micros amount = 0;
  if (const auto* t = std::get_if<TransferBody>(&tx.body)) {
    to = &t->to;
    amount = t->amount;
  } else if (const auto* m = std::get_if<MintBody>(&tx.body)) {
    to = &m->to;
    amount = m->amount;
  } else {
    return std::nullopt;
  }
  std::string out;
  out.reserve(200 + tx.chainId.size());
  out += "mercato-tx-v1\n{\"body\":{\"amount\":";
  out += std::to_string(amount);
  out += ",\"to\":";
  out += quoted(*to);
  out += "},\"chain\":";
  out += quoted(tx.chainId);
  out += ",\"from\":";
  out += quoted(tx.from);
  out += ",\"kind\":";
  out += quoted(std::string(txKindName(tx.kind)));
  out += ",\"nonce\":";
  out += std::to_string(tx.nonce);
  out += '}';
  return out;
}
}  // namespace

std::string signingBytes(const Tx& tx) {
  if (auto fast = amountToSigningBytes(tx)) return std::move(*fast);
  json j = {{"chain", tx.chainId},
            {"kind", std::string(txKindName(tx.kind))},
            {"from", tx.from},
            {"nonce", tx.nonce},
            {"body", bodyToJson(tx.body)}};
  // Bodies built from typed fields hold no floats, so this cannot fail.
  return "mercato-tx-v1\n" + canonicalJson(j).value();
}

std::string txHashHex(const Tx& tx) {
  return crypto::hashHex(crypto::blake2b256(signingBytes(tx)));
}

SignedTx signTx(Tx tx, const crypto::Identity& id) {
  SignedTx s;
  s.signing = signingBytes(tx);
  s.signer = id.publicKey();
  s.signature = id.sign(s.signing);
  s.hash = crypto::hashHex(crypto::blake2b256(s.signing));
  s.tx = std::move(tx);
  return s;
}

json toJson(const SignedTx& s) {
  return {{"tx",
           {{"chain", s.tx.chainId},
            {"kind", std::string(txKindName(s.tx.kind))},
            {"from", s.tx.from},
            {"nonce", s.tx.nonce},
            {"body", bodyToJson(s.tx.body)}}},
          {"signer", s.signer.hex()},
          {"sig", s.signature.hex()}};
}

std::string wireText(const SignedTx& s) {
  constexpr std::string_view kPrefix = "mercato-tx-v1\n";
  const std::string signing = s.signing.empty() ? signingBytes(s.tx) : s.signing;
  std::string out;
  out.reserve(signing.size() + 220);
  out += "{\"sig\":\"";
  out += s.signature.hex();
  out += "\",\"signer\":\"";
  out += s.signer.hex();
  out += "\",\"tx\":";
  out.append(signing, kPrefix.size());
  out += '}';
  return out;
}

Result<SignedTx> decodeSignedTx(const json& j) {
  if (!j.is_object()) return invalidArgument("transaction: expected a JSON object");
  RETURN_IF_ERROR(jsonOnlyKeys(j, {"tx", "signer", "sig"}, ""));
  SignedTx s;
  ASSIGN_OR_RETURN(std::string signerHex, jsonString(j, "signer", ""));
  auto pk = crypto::PublicKey::fromHex(signerHex);
  if (!pk.isOk()) return invalidArgument("signer: expected 64 hex characters (Ed25519 public key)");
  s.signer = *pk;
  ASSIGN_OR_RETURN(std::string sigHex, jsonString(j, "sig", ""));
  auto sig = crypto::Signature::fromHex(sigHex);
  if (!sig.isOk()) return invalidArgument("sig: expected 128 hex characters (Ed25519 signature)");
  s.signature = *sig;
  if (!j.contains("tx") || !j["tx"].is_object()) return invalidArgument("tx: expected an object");
  const json& t = j["tx"];
  RETURN_IF_ERROR(jsonOnlyKeys(t, {"chain", "kind", "from", "nonce", "body"}, "tx"));
  ASSIGN_OR_RETURN(s.tx.chainId, jsonString(t, "chain", "tx"));
  ASSIGN_OR_RETURN(std::string kind, jsonString(t, "kind", "tx"));
  ASSIGN_OR_RETURN(s.tx.kind, parseTxKind(kind));
  ASSIGN_OR_RETURN(s.tx.from, jsonString(t, "from", "tx"));
  RETURN_IF_ERROR(checkAddress(s.tx.from, "tx.from"));
  if (s.tx.from != crypto::addressFromPublicKey(s.signer))
    return unauthenticated("tx.from " + s.tx.from + " is not the address of the signer key");
  ASSIGN_OR_RETURN(int64_t nonce, jsonInt(t, "nonce", "tx"));
  if (nonce == 0) return invalidArgument("tx.nonce: nonces start at 1");
  s.tx.nonce = static_cast<uint64_t>(nonce);
  if (!t.contains("body")) return invalidArgument("tx.body: required field is missing");
  ASSIGN_OR_RETURN(s.tx.body, bodyFromJson(s.tx.kind, t["body"]));
  // The signature covers the re-encoded typed transaction; a sender that encoded differently
  // (e.g. with floats) simply fails verification.
  s.signing = signingBytes(s.tx);
  s.hash = crypto::hashHex(crypto::blake2b256(s.signing));
  return s;
}

Status verifySignature(const SignedTx& s) {
  if (!crypto::verify(s.signer, s.signing.empty() ? signingBytes(s.tx) : s.signing, s.signature))
    return unauthenticated("bad signature on transaction " + s.hash);
  return Status::ok();
}

std::string escrowIdFor(const std::string& publisher, uint64_t nonce) {
  auto h = crypto::Hasher().field("mercato-escrow").field(publisher).u64(nonce).finish();
  return "esc_" + toHex(std::span<const uint8_t>(h.data(), 12));
}

}  // namespace mercato::ledger
