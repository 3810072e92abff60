#include "p2p/network.hpp"

#include <sodium.h>

#include <algorithm>

#include "crypto/address.hpp"
#include "crypto/hash.hpp"

namespace mercato::p2p {

namespace {

constexpr size_t kChecksum = 4;

std::string_view asChars(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::array<uint8_t, kChecksum> checksum(std::string_view domain, std::string_view data) {
  crypto::Hash256 h = crypto::Hasher().update(domain).update(data).finish();
  std::array<uint8_t, kChecksum> out{};
  std::copy_n(h.begin(), kChecksum, out.begin());
  return out;
}

std::string hexOf(std::span<const uint8_t> b) {
  std::string out(b.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), b.data(), b.size());
  out.pop_back();
  return out;
}

}  // namespace

std::string peerIdFromKey(const crypto::PublicKey& key) {
  std::string raw(asChars(key.bytes));
  auto sum = checksum("mercato-peer", raw);
  raw.append(asChars(sum));
  return std::string(kPeerIdPrefix) + crypto::base32Encode(raw);
}

Result<crypto::PublicKey> keyFromPeerId(std::string_view peerId) {
  if (peerId.substr(0, kPeerIdPrefix.size()) != kPeerIdPrefix)
    return invalidArgument("peer id: must start with \"" + std::string(kPeerIdPrefix) + "\"");
  auto raw = crypto::base32Decode(peerId.substr(kPeerIdPrefix.size()));
  if (!raw.isOk()) return raw.status().withContext("peer id: bad encoding");
  if (raw->size() != 32 + kChecksum)
    return invalidArgument("peer id: wrong length: expected 64 characters, got " +
                           std::to_string(peerId.size()));
  auto sum = checksum("mercato-peer", std::string_view(*raw).substr(0, 32));
  if (!std::equal(sum.begin(), sum.end(), raw->begin() + 32,
                  [](uint8_t a, char b) { return a == static_cast<uint8_t>(b); }))
    return invalidArgument("peer id: checksum mismatch (typo in the peer id?)");
  crypto::PublicKey pk;
  std::copy_n(raw->begin(), 32, pk.bytes.begin());
  return pk;
}

std::string NetworkId::hex() const { return hexOf(bytes); }

Network Network::publicNetwork() {
  crypto::initCrypto();
  Network n;
  n.name_ = std::string(kPublicNetworkName);
  crypto::Hash256 h = crypto::blake2b256("mercato-p2p-public-v1");
  std::copy_n(h.begin(), n.id_.bytes.size(), n.id_.bytes.begin());
  return n;
}

Network Network::fromKey(std::string name, const std::array<uint8_t, 32>& key) {
  Network n;
  n.name_ = std::move(name);
  n.private_ = true;
  n.key_ = key;
  crypto::Hash256 h = crypto::Hasher().update("mercato-p2p-netid-v1").update(key).finish();
  std::copy_n(h.begin(), n.id_.bytes.size(), n.id_.bytes.begin());
  constexpr std::string_view kAead = "mercato-p2p-aead-v1";
  crypto_generichash(n.aeadKey_.data(), n.aeadKey_.size(),
                     reinterpret_cast<const uint8_t*>(kAead.data()), kAead.size(), key.data(),
                     key.size());
  constexpr std::string_view kTag = "mercato-p2p-tag-v1";
  crypto_generichash(n.tagKey_.data(), n.tagKey_.size(),
                     reinterpret_cast<const uint8_t*>(kTag.data()), kTag.size(), key.data(),
                     key.size());
  return n;
}

NetworkId Network::wireTag(std::span<const uint8_t, 24> nonce) const {
  NetworkId tag;
  crypto_generichash(tag.bytes.data(), tag.bytes.size(), nonce.data(), nonce.size(), tagKey_.data(),
                     tagKey_.size());
  return tag;
}

Status Network::validateName(std::string_view name) {
  if (name.empty() || name.size() > 32)
    return invalidArgument("network name: expected 1 to 32 characters, got " +
                           std::to_string(name.size()));
  if (name == kPublicNetworkName)
    return invalidArgument("network name: \"public\" is the public network's name");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return invalidArgument("network name: invalid character '" + std::string(1, c) +
                             "' (expected a-z, 0-9, '.', '_' or '-')");
  }
  return Status::ok();
}

Result<Network> Network::createPrivate(std::string_view name) {
  crypto::initCrypto();
  RETURN_IF_ERROR(validateName(name));
  std::array<uint8_t, 32> key{};
  randombytes_buf(key.data(), key.size());
  return fromKey(std::string(name), key);
}

std::string Network::keyText() const {
  if (!private_) return "";
  std::string raw;
  raw.push_back(1);
  raw.push_back(static_cast<char>(name_.size()));
  raw += name_;
  raw.append(asChars(key_));
  auto sum = checksum("mercato-netkey", raw);
  raw.append(asChars(sum));
  return std::string(kNetworkKeyPrefix) + crypto::base32Encode(raw);
}

Result<Network> Network::fromKeyText(std::string_view text) {
  crypto::initCrypto();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.remove_suffix(1);
  if (text.substr(0, kNetworkKeyPrefix.size()) != kNetworkKeyPrefix)
    return invalidArgument("network key: must start with \"" + std::string(kNetworkKeyPrefix) +
                           "\"");
  auto raw = crypto::base32Decode(text.substr(kNetworkKeyPrefix.size()));
  if (!raw.isOk()) return raw.status().withContext("network key: bad encoding");
  const std::string& r = *raw;
  if (r.size() < 2 + 1 + 32 + kChecksum) return invalidArgument("network key: too short");
  if (r[0] != 1)
    return invalidArgument("network key: unsupported version " +
                           std::to_string(static_cast<uint8_t>(r[0])));
  const size_t nameLen = static_cast<uint8_t>(r[1]);
  if (r.size() != 2 + nameLen + 32 + kChecksum)
    return invalidArgument("network key: wrong length (truncated or extra characters?)");
  auto sum = checksum("mercato-netkey", std::string_view(r).substr(0, r.size() - kChecksum));
  if (!std::equal(sum.begin(), sum.end(), r.end() - kChecksum,
                  [](uint8_t a, char b) { return a == static_cast<uint8_t>(b); }))
    return invalidArgument("network key: checksum mismatch (typo in the key?)");
  std::string name = r.substr(2, nameLen);
  if (Status s = validateName(name); !s.isOk()) return s.withContext("network key");
  std::array<uint8_t, 32> key{};
  std::copy_n(r.begin() + 2 + nameLen, 32, key.begin());
  return fromKey(std::move(name), key);
}

}  // namespace mercato::p2p
