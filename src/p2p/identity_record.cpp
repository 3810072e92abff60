#include "p2p/identity_record.hpp"

#include "p2p/bytes.hpp"
#include "p2p/network.hpp"

namespace mercato::p2p {

namespace {

constexpr std::string_view kDomain{"mercato-p2p-record-v1\0", 22};
constexpr size_t kMaxLabel = 64;
constexpr size_t kMaxAddresses = 8;
constexpr size_t kMaxRoles = 16;

// Labels end up in JSON (which must be valid UTF-8) and on terminals: valid UTF-8 without
// control characters.
bool cleanLabel(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    if (len == 1 && (c < 0x20 || c == 0x7f)) return false;
    if (len == 2 && c < 0xc2) return false;  // overlong
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<uint8_t>(s[i + k]) & 0xc0) != 0x80) return false;
    const auto c1 = len > 1 ? static_cast<uint8_t>(s[i + 1]) : 0;
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) return false;  // overlong, surrogate
    if (c > 0xf4 || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) return false;
    i += len;
  }
  return true;
}

Status checkLimits(const IdentityRecord& r) {
  if (!cleanLabel(r.name)) return invalidArgument("identity record: name is not clean UTF-8");
  for (const auto& a : r.addresses)
    if (!cleanLabel(a)) return invalidArgument("identity record: address is not clean UTF-8");
  for (const auto& a : r.roles)
    if (!cleanLabel(a)) return invalidArgument("identity record: role is not clean UTF-8");
  if (r.name.size() > kMaxLabel) return invalidArgument("identity record: name over 64 bytes");
  if (r.addresses.size() > kMaxAddresses)
    return invalidArgument("identity record: more than 8 addresses");
  if (r.roles.size() > kMaxRoles) return invalidArgument("identity record: more than 16 roles");
  for (const auto& a : r.addresses)
    if (a.size() > kMaxLabel) return invalidArgument("identity record: address over 64 bytes");
  for (const auto& a : r.roles)
    if (a.size() > kMaxLabel) return invalidArgument("identity record: role over 64 bytes");
  return Status::ok();
}

void writeFields(ByteWriter& w, const IdentityRecord& r) {
  w.fixed(r.key.bytes);
  w.u64(r.seq);
  w.str8(r.name);
  w.u8(static_cast<uint8_t>(r.addresses.size()));
  for (const auto& a : r.addresses) w.str8(a);
  w.u16(r.udpPort);
  w.u16(r.httpPort);
  w.u8(static_cast<uint8_t>(r.roles.size()));
  for (const auto& a : r.roles) w.str8(a);
}

}  // namespace

std::string IdentityRecord::signingBytes() const {
  ByteWriter w;
  w.raw(kDomain);
  writeFields(w, *this);
  return std::move(w.bytes());
}

Status IdentityRecord::sign(const crypto::Identity& id) {
  RETURN_IF_ERROR(checkLimits(*this));
  key = id.publicKey();
  signature = id.sign(signingBytes());
  return Status::ok();
}

bool IdentityRecord::verify() const { return crypto::verify(key, signingBytes(), signature); }

std::string IdentityRecord::encode() const {
  ByteWriter w;
  writeFields(w, *this);
  w.fixed(signature.bytes);
  return std::move(w.bytes());
}

Result<IdentityRecord> IdentityRecord::decode(std::string_view bytes) {
  ByteReader r(bytes);
  IdentityRecord rec;
  rec.key.bytes = r.fixed<32>();
  rec.seq = r.u64();
  rec.name = std::string(r.str8());
  size_t n = r.u8();
  if (n > kMaxAddresses) return invalidArgument("identity record: more than 8 addresses");
  for (size_t i = 0; i < n && r.ok(); ++i) rec.addresses.emplace_back(r.str8());
  rec.udpPort = r.u16();
  rec.httpPort = r.u16();
  n = r.u8();
  if (n > kMaxRoles) return invalidArgument("identity record: more than 16 roles");
  for (size_t i = 0; i < n && r.ok(); ++i) rec.roles.emplace_back(r.str8());
  rec.signature.bytes = r.fixed<64>();
  if (!r.ok()) return invalidArgument("identity record: truncated");
  if (!r.atEnd()) return invalidArgument("identity record: trailing bytes");
  RETURN_IF_ERROR(checkLimits(rec));
  return rec;
}

nlohmann::json IdentityRecord::toJson() const {
  return {{"peerId", peerIdFromKey(key)},
          {"name", name},
          {"addresses", addresses},
          {"udpPort", udpPort},
          {"httpPort", httpPort},
          {"roles", roles},
          {"seq", seq}};
}

}  // namespace mercato::p2p
