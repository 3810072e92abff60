// IdentityRecord: what a node says about itself (name, addresses, ports, roles), signed by its
// Ed25519 key. A record with a higher `seq` replaces an older one; a lower `seq` is a replay and
// is dropped (RecordBook counts it).
//
// Canonical encoding (big-endian), which is both the wire form and, without the trailing
// signature, the signed bytes after the domain "mercato-p2p-record-v1\0":
//   public key [32] | seq u64 | name str8 | n u8, n x address str8 | udp port u16
//   | http port u16 | m u8, m x role str8 | signature [64]
// Limits: name <= 64 bytes, <= 8 addresses, <= 16 roles, each <= 64 bytes, valid UTF-8 is not
// checked (these are labels; the API escapes them as JSON).
//
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::p2p {

struct IdentityRecord {
  crypto::PublicKey key;
  uint64_t seq = 0;
  std::string name;
  std::vector<std::string> addresses;  // "ip:port" the node can be reached on (UDP)
  uint16_t udpPort = 0;
  uint16_t httpPort = 0;
  std::vector<std::string> roles;  // "ledger-host", "runtime", "provider", "p2p", ...
  crypto::Signature signature;

  // The bytes the signature covers (domain + every field but the signature).
  std::string signingBytes() const;
  // Checks limits, then signs with `id` (whose key becomes `key`).
  Status sign(const crypto::Identity& id);
  bool verify() const;
  std::string encode() const;
  // Parses and checks limits; does not verify the signature.
  static Result<IdentityRecord> decode(std::string_view bytes);
  nlohmann::json toJson()
      const;  // {"peerId","name","addresses","udpPort","httpPort","roles","seq"}
};

}  // namespace mercato::p2p
