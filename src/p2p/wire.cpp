#include "p2p/wire.hpp"

#include <sodium.h>

#include "p2p/bytes.hpp"

namespace mercato::p2p {

namespace {

constexpr std::string_view kMagic = "MP2P";
constexpr uint8_t kVersion = 1;
constexpr uint8_t kKindPublic = 0;
constexpr uint8_t kKindPrivate = 1;
constexpr size_t kHeaderBytes = 4 + 1 + 1 + 16;
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::string_view kSignDomain{"mercato-p2p-msg-v1\0", 19};

bool hasNonce(MsgType t) { return t != MsgType::kRecord; }

bool validEndpointChars(std::string_view s) {
  if (s.empty() || s.size() > kMaxEndpointBytes) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
          c == ':' || c == '[' || c == ']'))
      return false;
  }
  return true;
}

Status encodeBody(ByteWriter& w, const Message& m) {
  if (hasNonce(m.type)) w.u64(m.nonce);
  switch (m.type) {
    case MsgType::kPing:
    case MsgType::kSummaryRequest:
      break;
    case MsgType::kPong:
      if (m.known.size() > kMaxGossipEntries)
        return invalidArgument("pong: more than " + std::to_string(kMaxGossipEntries) + " nodes");
      w.u8(static_cast<uint8_t>(m.known.size()));
      for (const auto& e : m.known) {
        if (!validEndpointChars(e.endpoint))
          return invalidArgument("pong: bad endpoint '" + e.endpoint + "'");
        w.fixed(e.key.bytes);
        w.str8(e.endpoint);
      }
      break;
    case MsgType::kRecord:
      w.raw(m.record);
      break;
    case MsgType::kSummaryResponse:
      if (m.record.size() > 0xffff || m.summary.size() > 0xffff)
        return tooLarge("summary response: over 64 KiB");
      w.str16(m.record);
      w.str16(m.summary);
      break;
  }
  return Status::ok();
}

bool decodeBody(std::string_view body, Message& m, std::string& why) {
  ByteReader r(body);
  if (hasNonce(m.type)) m.nonce = r.u64();
  switch (m.type) {
    case MsgType::kPing:
    case MsgType::kSummaryRequest:
      break;
    case MsgType::kPong: {
      size_t n = r.u8();
      if (n > kMaxGossipEntries) {
        why = "pong: too many nodes";
        return false;
      }
      for (size_t i = 0; i < n && r.ok(); ++i) {
        GossipEntry e;
        e.key.bytes = r.fixed<32>();
        e.endpoint = std::string(r.str8());
        if (r.ok() && !validEndpointChars(e.endpoint)) {
          why = "pong: bad endpoint";
          return false;
        }
        m.known.push_back(std::move(e));
      }
      break;
    }
    case MsgType::kRecord:
      m.record = std::string(r.raw(r.remaining()));
      break;
    case MsgType::kSummaryResponse:
      m.record = std::string(r.str16());
      m.summary = std::string(r.str16());
      break;
  }
  if (!r.ok() || !r.atEnd()) {
    why = std::string(msgTypeName(m.type)) + ": truncated body or trailing bytes";
    return false;
  }
  return true;
}

std::string signingBytes(const NetworkId& net, std::string_view unsignedMessage) {
  std::string s(kSignDomain);
  s.append(reinterpret_cast<const char*>(net.bytes.data()), net.bytes.size());
  s.append(unsignedMessage);
  return s;
}

OpenResult drop(DropReason r, std::string detail) {
  OpenResult o;
  o.reason = r;
  o.detail = std::move(detail);
  return o;
}

}  // namespace

std::string_view msgTypeName(MsgType t) {
  switch (t) {
    case MsgType::kPing:
      return "ping";
    case MsgType::kPong:
      return "pong";
    case MsgType::kRecord:
      return "record";
    case MsgType::kSummaryRequest:
      return "summary_request";
    case MsgType::kSummaryResponse:
      return "summary_response";
  }
  return "unknown";
}

std::string_view dropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kNone:
      return "none";
    case DropReason::kOversized:
      return "oversized";
    case DropReason::kRateLimited:
      return "rate_limited";
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kUnknownNetwork:
      return "unknown_network";
    case DropReason::kDecryptFailed:
      return "decrypt_failed";
    case DropReason::kBadSignature:
      return "bad_signature";
    case DropReason::kReplayed:
      return "replayed";
  }
  return "unknown";
}

Result<std::string> sealPacket(const Network& net, const crypto::Identity& self, Message m) {
  m.sender = self.publicKey();
  ByteWriter body;
  RETURN_IF_ERROR(encodeBody(body, m));
  if (body.bytes().size() > 0xffff) return tooLarge("p2p message body over 64 KiB");
  ByteWriter msg;
  msg.u8(static_cast<uint8_t>(m.type));
  msg.fixed(m.sender.bytes);
  msg.u64(m.seq);
  msg.u64(static_cast<uint64_t>(m.timeMs));
  msg.str16(body.bytes());
  crypto::Signature sig = self.sign(signingBytes(net.id(), msg.bytes()));
  msg.fixed(sig.bytes);

  ByteWriter pkt;
  pkt.raw(kMagic);
  pkt.u8(kVersion);
  pkt.u8(net.isPrivate() ? kKindPrivate : kKindPublic);
  if (!net.isPrivate()) {
    pkt.fixed(net.id().bytes);
    pkt.raw(msg.bytes());
  } else {
    std::array<uint8_t, kNonceBytes> nonce{};
    randombytes_buf(nonce.data(), nonce.size());
    pkt.fixed(net.wireTag(nonce).bytes);
    pkt.fixed(nonce);
    const std::string ad = pkt.bytes();
    std::string ct(msg.bytes().size() + kTagBytes, '\0');
    unsigned long long ctLen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        reinterpret_cast<uint8_t*>(ct.data()), &ctLen,
        reinterpret_cast<const uint8_t*>(msg.bytes().data()), msg.bytes().size(),
        reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), nullptr, nonce.data(),
        net.aeadKey().data());
    ct.resize(ctLen);
    pkt.raw(ct);
  }
  if (pkt.bytes().size() > kMaxPacketBytes)
    return tooLarge("p2p packet of " + std::to_string(pkt.bytes().size()) + " bytes exceeds " +
                    std::to_string(kMaxPacketBytes));
  return std::move(pkt.bytes());
}

OpenResult openPacket(std::string_view packet, const JoinedNetworks& joined, size_t maxBytes) {
  if (packet.size() > maxBytes)
    return drop(DropReason::kOversized, std::to_string(packet.size()) + " bytes");
  ByteReader hdr(packet);
  std::string_view magic = hdr.raw(4);
  uint8_t version = hdr.u8();
  uint8_t kind = hdr.u8();
  NetworkId id;
  id.bytes = hdr.fixed<16>();
  if (!hdr.ok() || magic != kMagic) return drop(DropReason::kMalformed, "bad magic or header");
  if (version != kVersion)
    return drop(DropReason::kMalformed, "unsupported version " + std::to_string(version));
  if (kind != kKindPublic && kind != kKindPrivate)
    return drop(DropReason::kMalformed, "unknown packet kind");
  if (kind == kKindPrivate && packet.size() < kHeaderBytes + kNonceBytes + kTagBytes)
    return drop(DropReason::kMalformed, "private packet too short");
  const Network* net = nullptr;
  if (kind == kKindPublic) {
    for (const Network* n : joined)
      if (!n->isPrivate() && n->id() == id) net = n;
  } else {
    std::span<const uint8_t, kNonceBytes> nonce(
        reinterpret_cast<const uint8_t*>(packet.data() + kHeaderBytes), kNonceBytes);
    for (const Network* n : joined)
      if (n->isPrivate() && n->wireTag(nonce) == id) net = n;
  }
  if (!net) return drop(DropReason::kUnknownNetwork, "network tag " + id.hex());

  std::string plain;
  std::string_view msgBytes;
  if (kind == kKindPublic) {
    msgBytes = packet.substr(kHeaderBytes);
  } else {
    const std::string_view ad = packet.substr(0, kHeaderBytes + kNonceBytes);
    const std::string_view ct = packet.substr(ad.size());
    plain.resize(ct.size() - kTagBytes);
    unsigned long long plainLen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<uint8_t*>(plain.data()), &plainLen, nullptr,
            reinterpret_cast<const uint8_t*>(ct.data()), ct.size(),
            reinterpret_cast<const uint8_t*>(ad.data()), ad.size(),
            reinterpret_cast<const uint8_t*>(packet.data() + kHeaderBytes),
            net->aeadKey().data()) != 0)
      return drop(DropReason::kDecryptFailed, "authentication tag mismatch");
    plain.resize(plainLen);
    msgBytes = plain;
  }

  ByteReader r(msgBytes);
  Message m;
  const uint8_t type = r.u8();
  m.sender.bytes = r.fixed<32>();
  m.seq = r.u64();
  m.timeMs = static_cast<int64_t>(r.u64());
  std::string_view body = r.str16();
  const size_t unsignedLen = r.pos();
  crypto::Signature sig;
  sig.bytes = r.fixed<64>();
  if (!r.ok() || !r.atEnd()) return drop(DropReason::kMalformed, "truncated message");
  if (type < 1 || type > 5) return drop(DropReason::kMalformed, "unknown type");
  m.type = static_cast<MsgType>(type);
  if (!crypto::verify(m.sender, signingBytes(net->id(), msgBytes.substr(0, unsignedLen)), sig))
    return drop(DropReason::kBadSignature, std::string(msgTypeName(m.type)));
  std::string why;
  if (!decodeBody(body, m, why)) return drop(DropReason::kMalformed, why);
  OpenResult o;
  o.opened = Opened{net, std::move(m)};
  return o;
}

}  // namespace mercato::p2p
