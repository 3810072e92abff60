// The p2p wire protocol: one UDP datagram is one signed message in one network, encrypted when
// the network is private. docs/p2p.md ("Wire protocol") is the reference; in short (big-endian):
//
//   packet  = "MP2P" | version u8 (=1) | kind u8 (0 public, 1 private)
//             | kind 0: network id [16] | message
//             | kind 1: tag [16] | nonce [24] | XChaCha20-Poly1305(message, ad = the 46 bytes
//               before it), tag = Network::wireTag(nonce) (unlinkable across packets)
//   message = type u8 | sender public key [32] | seq u64 | time ms u64 | body str16
//             | signature [64]
//   signature = Ed25519 over "mercato-p2p-msg-v1\0" | network id | message without signature
//
// Bodies by type: ping/summary request: nonce u64. pong: nonce u64 | n u8 | n x (public key
// [32] | endpoint str8). record: identity record (identity_record.hpp). summary response: nonce
// u64 | record str16 | summary JSON str16.
//
// openPacket() checks size, framing, network, decryption and the signature; the replay window
// (ReplayGuard) and rate limit are the transport's, since they need state.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "p2p/network.hpp"

namespace mercato::p2p {

inline constexpr size_t kMaxPacketBytes = 8192;
inline constexpr size_t kMaxGossipEntries = 64;
inline constexpr size_t kMaxEndpointBytes = 64;

enum class MsgType : uint8_t {
  kPing = 1,
  kPong = 2,
  kRecord = 3,
  kSummaryRequest = 4,
  kSummaryResponse = 5,
};
std::string_view msgTypeName(MsgType t);

struct GossipEntry {
  crypto::PublicKey key;
  std::string endpoint;  // "ip:port" as the gossiping node saw it
};

struct Message {
  MsgType type = MsgType::kPing;
  crypto::PublicKey sender;  // set by sealPacket from the signing identity
  uint64_t seq = 0;
  int64_t timeMs = 0;
  uint64_t nonce = 0;              // ping, pong, summary request/response
  std::vector<GossipEntry> known;  // pong
  std::string record;              // record, summary response: an encoded IdentityRecord
  std::string summary;             // summary response: JSON text
};

// Why an incoming datagram was dropped; each has a counter (transport.hpp).
enum class DropReason {
  kNone = 0,
  kOversized,
  kRateLimited,
  kMalformed,
  kUnknownNetwork,
  kDecryptFailed,
  kBadSignature,
  kReplayed,
};
inline constexpr DropReason kAllDropReasons[] = {
    DropReason::kOversized,      DropReason::kRateLimited,   DropReason::kMalformed,
    DropReason::kUnknownNetwork, DropReason::kDecryptFailed, DropReason::kBadSignature,
    DropReason::kReplayed};
// "oversized", "rate_limited", "malformed", "unknown_network", "decrypt_failed",
// "bad_signature", "replayed".
std::string_view dropReasonName(DropReason r);

// Encodes `m` (its sender, seq and time as given), signs it with `self` and encrypts it for a
// private `net`. Fails when a field is over its limit or the packet would exceed
// kMaxPacketBytes.
Result<std::string> sealPacket(const Network& net, const crypto::Identity& self, Message m);

struct Opened {
  const Network* network = nullptr;
  Message message;
};
struct OpenResult {
  std::optional<Opened> opened;
  DropReason reason = DropReason::kNone;
  std::string detail;  // for debug logs
};
// The networks a node has joined (the public one and private ones); a private packet is matched
// by computing each private network's tag for its nonce.
using JoinedNetworks = std::vector<const Network*>;

// Checks and decodes one datagram.
OpenResult openPacket(std::string_view packet, const JoinedNetworks& joined,
                      size_t maxBytes = kMaxPacketBytes);

}  // namespace mercato::p2p
