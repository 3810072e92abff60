// Peer ids and networks: the names and keys that the p2p wire protocol is built on.
//
// A peer id is the checksummed text of a node's Ed25519 public key, so a peer id alone is enough
// to verify that node's signatures:
//   peer id = "mpeer1" + base32(public key [32] || first 4 bytes of BLAKE2b-256("mercato-peer" ||
//             public key))        (base32 as in crypto/address.hpp: lowercase, no padding)
//
// A Network is the public network or a private one. A private network is defined by a random
// 32-byte key; its shareable text form carries a local name and a checksum:
//   "mnet1" + base32(version u8 = 1 || name length u8 || name || key [32] || checksum [4])
//   checksum = first 4 bytes of BLAKE2b-256("mercato-netkey" || everything before it)
// A network's id is a hash that reveals neither key nor name:
//   public:  id = BLAKE2b-256("mercato-p2p-public-v1")[0..16)
//   private: id = BLAKE2b-256("mercato-p2p-netid-v1" || key)[0..16)
// The public id is what its packets carry. A private network's packets carry instead a tag that
// changes with every packet, so that an outsider cannot even tell which packets (and so which
// nodes) belong to the same private network:
//   tag = BLAKE2b-128(message = the packet's 24-byte nonce, key = tag key)
//   tag key  = BLAKE2b-256(message = "mercato-p2p-tag-v1", key = network key)
// and its traffic is encrypted under
//   aead key = BLAKE2b-256(message = "mercato-p2p-aead-v1", key = network key)
// (docs/p2p.md, "Wire protocol"). Two nodes holding different keys under the same name are in
// different networks and cannot read each other.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::p2p {

inline constexpr std::string_view kPeerIdPrefix = "mpeer1";
inline constexpr std::string_view kNetworkKeyPrefix = "mnet1";
inline constexpr std::string_view kPublicNetworkName = "public";

// The text form of `key` ("mpeer1...", 64 characters).
std::string peerIdFromKey(const crypto::PublicKey& key);
// The public key inside a peer id; the error says whether prefix, encoding, length or checksum
// is wrong.
Result<crypto::PublicKey> keyFromPeerId(std::string_view peerId);

struct NetworkId {
  std::array<uint8_t, 16> bytes{};
  std::string hex() const;
  auto operator<=>(const NetworkId&) const = default;
};

class Network {
 public:
  static Network publicNetwork();
  // A new private network with a fresh random key. `name` is a local label: 1 to 32 of
  // [a-z0-9._-], and not "public".
  static Result<Network> createPrivate(std::string_view name);
  // Parses a shareable key ("mnet1..."). Errors name the part that is wrong (prefix, encoding,
  // version, name, checksum).
  static Result<Network> fromKeyText(std::string_view text);
  // OK when `name` is a valid private network name.
  static Status validateName(std::string_view name);

  const std::string& name() const { return name_; }
  bool isPrivate() const { return private_; }
  const NetworkId& id() const { return id_; }
  // The shareable key; "" for the public network. Secret.
  std::string keyText() const;
  // The XChaCha20-Poly1305 key for this network's traffic (private networks only). Secret.
  const std::array<uint8_t, 32>& aeadKey() const { return aeadKey_; }
  // The header tag of a private network's packet with this nonce (see above).
  NetworkId wireTag(std::span<const uint8_t, 24> nonce) const;

 private:
  Network() = default;
  static Network fromKey(std::string name, const std::array<uint8_t, 32>& key);
  std::string name_;
  bool private_ = false;
  std::array<uint8_t, 32> key_{};
  std::array<uint8_t, 32> aeadKey_{};
  std::array<uint8_t, 32> tagKey_{};
  NetworkId id_;
};

}  // namespace mercato::p2p
