#include "publisher/gateway_auth.hpp"

#include <sodium.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/strings.hpp"

namespace mercato::publisher {

namespace {

using nlohmann::json;

constexpr std::string_view kDomain = "mercato-gateway-v1\n";
constexpr size_t kMaxTokenBytes = 8 << 10;
constexpr size_t kMaxCaveats = 32;

std::string sha256Hex(std::string_view data) {
  std::array<uint8_t, crypto_hash_sha256_BYTES> h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return toHex(std::span<const uint8_t>(h));
}

Result<int64_t> parseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return invalidArgument("'" + std::string(s) + "' is not an integer");
  }
  return v;
}

using Mac = std::array<uint8_t, crypto_auth_hmacsha256_BYTES>;

Mac hmac(std::span<const uint8_t> key, std::string_view msg) {
  Mac out{};
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(msg.data()),
                                msg.size());
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}

std::string base64url(std::string_view bytes) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

Result<std::string> unbase64url(std::string_view text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return invalidArgument("not base64url");
  }
  out.resize(len);
  return out;
}

struct Macaroon {
  std::string id;
  std::vector<std::string> caveats;
  Mac sig{};
};

std::string encodeMacaroon(const Macaroon& m) {
  json j = {{"id", m.id}, {"caveats", m.caveats}, {"sig", toHex(std::span<const uint8_t>(m.sig))}};
  return base64url(j.dump());
}

// Structural decode; the chain is checked by the caller. Errors are kInvalidArgument.
Result<Macaroon> decodeMacaroon(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return invalidArgument("macaroon: longer than 8 KiB");
  auto raw = unbase64url(trimSpace(token));
  if (!raw.isOk()) return invalidArgument("macaroon: not base64url");
  json j = json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.size() != 3 || !j.contains("id") || !j.contains("caveats") ||
      !j.contains("sig")) {
    return invalidArgument("macaroon: expected a JSON object {id, caveats, sig}");
  }
  Macaroon m;
  if (!j["id"].is_string() || j["id"].get<std::string>().empty())
    return invalidArgument("macaroon: id: expected a non-empty string");
  m.id = j["id"].get<std::string>();
  if (!j["caveats"].is_array() || j["caveats"].size() > kMaxCaveats)
    return invalidArgument("macaroon: caveats: expected an array of at most 32 strings");
  for (const auto& c : j["caveats"]) {
    if (!c.is_string()) return invalidArgument("macaroon: caveats: expected strings");
    m.caveats.push_back(c.get<std::string>());
  }
  if (!j["sig"].is_string()) return invalidArgument("macaroon: sig: expected hex");
  auto sig = fromHex(j["sig"].get<std::string>());
  if (!sig.isOk() || sig->size() != m.sig.size())
    return invalidArgument("macaroon: sig: expected 64 hex characters");
  std::copy(sig->begin(), sig->end(), m.sig.begin());
  return m;
}

Mac chain(std::span<const uint8_t, 32> secret, const Macaroon& m) {
  Mac sig = hmac(secret, m.id);
  for (const auto& c : m.caveats) sig = hmac(sig, c);
  return sig;
}

// "key = value" -> (key, value), both trimmed.
std::pair<std::string, std::string> splitCaveat(std::string_view c) {
  auto eq = c.find('=');
  if (eq == std::string_view::npos) return {std::string(trimSpace(c)), ""};
  return {std::string(trimSpace(c.substr(0, eq))), std::string(trimSpace(c.substr(eq + 1)))};
}

}  // namespace

std::string requestSigningBytes(std::string_view method, std::string_view target,
                                std::string_view body, int64_t tsMs) {
  std::string out(kDomain);
  out.append(method).append("\n").append(target).append("\n");
  out.append(std::to_string(tsMs)).append("\n").append(sha256Hex(body));
  return out;
}

std::string signRequest(const crypto::Identity& id, std::string_view method,
                        std::string_view target, std::string_view body, int64_t tsMs) {
  crypto::Signature sig = id.sign(requestSigningBytes(method, target, body, tsMs));
  return std::string(kSigScheme) + " key=" + id.publicKey().hex() + ",ts=" + std::to_string(tsMs) +
         ",sig=" + sig.hex();
}

Result<crypto::PublicKey> verifyRequestSignature(std::string_view headerValue,
                                                 std::string_view method, std::string_view target,
                                                 std::string_view body, int64_t nowMs,
                                                 int64_t skewMs) {
  const std::string prefix = std::string(kSigScheme) + " ";
  if (!startsWith(headerValue, prefix))
    return unauthenticated("Authorization: expected 'Mercato-Sig key=..,ts=..,sig=..'");
  std::string_view rest = headerValue.substr(prefix.size());
  std::optional<std::string> key, ts, sig;
  for (const std::string& part : split(rest, ',')) {
    auto eq = part.find('=');
    if (eq == std::string::npos)
      return unauthenticated("Mercato-Sig: '" + part + "' is not name=value");
    std::string name(trimSpace(std::string_view(part).substr(0, eq)));
    std::string value(trimSpace(std::string_view(part).substr(eq + 1)));
    std::optional<std::string>* slot = name == "key"   ? &key
                                       : name == "ts"  ? &ts
                                       : name == "sig" ? &sig
                                                       : nullptr;
    if (!slot) return unauthenticated("Mercato-Sig: unknown parameter '" + name + "'");
    if (slot->has_value())
      return unauthenticated("Mercato-Sig: duplicate parameter '" + name + "'");
    *slot = value;
  }
  if (!key) return unauthenticated("Mercato-Sig: missing key=");
  if (!ts) return unauthenticated("Mercato-Sig: missing ts=");
  if (!sig) return unauthenticated("Mercato-Sig: missing sig=");
  auto pk = crypto::PublicKey::fromHex(*key);
  if (!pk.isOk()) return unauthenticated("Mercato-Sig: key: " + pk.status().message());
  auto tsMs = parseInt(*ts);
  if (!tsMs.isOk()) return unauthenticated("Mercato-Sig: ts: " + tsMs.status().message());
  auto s = crypto::Signature::fromHex(*sig);
  if (!s.isOk()) return unauthenticated("Mercato-Sig: sig: " + s.status().message());
  const int64_t delta = *tsMs > nowMs ? *tsMs - nowMs : nowMs - *tsMs;
  if (delta > skewMs) {
    return unauthenticated("Mercato-Sig: ts " + std::to_string(*tsMs) + " is " +
                           std::to_string(delta / 1000) + " s away from the gateway's clock " +
                           std::to_string(nowMs) + " (allowed ±" + std::to_string(skewMs / 1000) +
                           " s); check the client's clock");
  }
  if (!crypto::verify(*pk, requestSigningBytes(method, target, body, *tsMs), *s))
    return unauthenticated("Mercato-Sig: signature does not verify for " + std::string(method) +
                           " " + std::string(target));
  return *pk;
}

std::string mintMacaroon(std::span<const uint8_t, 32> secret, const std::string& deploymentId,
                         int64_t expiresMs, const std::vector<std::string>& ops) {
  crypto::initCrypto();
  std::array<uint8_t, 16> nonce{};
  randombytes_buf(nonce.data(), nonce.size());
  Macaroon m;
  m.id = toHex(std::span<const uint8_t>(nonce));
  std::string opList;
  for (const auto& op : ops) opList += (opList.empty() ? "" : ",") + op;
  m.caveats = {"deployment = " + deploymentId, "expires = " + std::to_string(expiresMs),
               "ops = " + opList};
  m.sig = chain(secret, m);
  return encodeMacaroon(m);
}

Result<std::string> attenuateMacaroon(std::string_view token, const std::string& caveat) {
  ASSIGN_OR_RETURN(Macaroon m, decodeMacaroon(token));
  if (caveat.find('=') == std::string::npos)
    return invalidArgument("macaroon caveat '" + caveat + "': expected 'name = value'");
  if (m.caveats.size() >= kMaxCaveats) return invalidArgument("macaroon: too many caveats");
  m.caveats.push_back(caveat);
  m.sig = hmac(m.sig, caveat);
  return encodeMacaroon(m);
}

Status verifyMacaroon(std::span<const uint8_t, 32> secret, std::string_view token,
                      const std::string& deploymentId, const std::string& op, int64_t nowMs) {
  auto decoded = decodeMacaroon(token);
  if (!decoded.isOk()) return unauthenticated(decoded.status().message());
  const Macaroon& m = *decoded;
  Mac expect = chain(secret, m);
  if (sodium_memcmp(expect.data(), m.sig.data(), expect.size()) != 0)
    return unauthenticated("macaroon: signature does not verify (forged or modified token)");
  bool sawDeployment = false, sawExpires = false;
  for (const auto& c : m.caveats) {
    auto [name, value] = splitCaveat(c);
    if (name == "deployment") {
      sawDeployment = true;
      if (value != deploymentId)
        return permissionDenied("macaroon: for deployment " + value + ", not " + deploymentId);
    } else if (name == "expires") {
      sawExpires = true;
      auto at = parseInt(value);
      if (!at.isOk()) return permissionDenied("macaroon: expires: " + at.status().message());
      if (nowMs >= *at)
        return permissionDenied("macaroon: expired at " + value + " (now " + std::to_string(nowMs) +
                                ")");
    } else if (name == "ops") {
      bool allowed = false;
      for (const auto& o : split(value, ',')) allowed |= trimSpace(o) == op;
      if (!allowed) return permissionDenied("macaroon: allows ops " + value + ", not " + op);
    } else {
      return permissionDenied("macaroon: unknown caveat '" + c + "'");
    }
  }
  if (!sawDeployment) return permissionDenied("macaroon: no deployment caveat");
  if (!sawExpires) return permissionDenied("macaroon: no expires caveat");
  return Status::ok();
}

}  // namespace mercato::publisher
