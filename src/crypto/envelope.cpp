#include "crypto/envelope.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <vector>

#include "crypto/hash.hpp"

namespace mercato::crypto {

namespace {

constexpr std::string_view kMagic = "MENV";
constexpr uint8_t kVersion = 1;
constexpr size_t kKeyBytes = 32;
constexpr size_t kStreamHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kABytes = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr size_t kSigBytes = crypto_sign_BYTES;
constexpr size_t kLenBytes = 4;
// magic | version | sender pk | recipient pk | ephemeral pk | stream header
constexpr size_t kSenderOff = kMagic.size() + 1;
constexpr size_t kRecipientOff = kSenderOff + kKeyBytes;
constexpr size_t kEphemeralOff = kRecipientOff + kKeyBytes;
constexpr size_t kStreamHeaderOff = kEphemeralOff + kKeyBytes;
constexpr size_t kHeaderBytes = kStreamHeaderOff + kStreamHeaderBytes;
constexpr size_t kMaxChunkCiphertext = kEnvelopeChunk + kABytes;

static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == 32);
static_assert(crypto_scalarmult_BYTES == 32 && crypto_box_PUBLICKEYBYTES == 32);

using Key = std::array<uint8_t, crypto_secretstream_xchacha20poly1305_KEYBYTES>;

template <typename T>
struct Wipe {
  T& obj;
  ~Wipe() { sodium_memzero(&obj, sizeof(obj)); }
};
template <typename T>
Wipe(T&) -> Wipe<T>;

std::string_view asView(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

const uint8_t* asBytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

void putU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t getU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// key = BLAKE2b-256(shared || eph_pk || recipient_x25519_pk)
Key streamKey(const std::array<uint8_t, 32>& shared, const uint8_t* ephPk,
              const uint8_t* recipientXPk) {
  Hash256 h = Hasher()
                  .update(asView(shared.data(), shared.size()))
                  .update(asView(ephPk, kKeyBytes))
                  .update(asView(recipientXPk, kKeyBytes))
                  .finish();
  Key key;
  std::copy(h.begin(), h.end(), key.begin());
  sodium_memzero(h.data(), h.size());
  return key;
}

std::string at(size_t offset) { return "byte " + std::to_string(offset); }

}  // namespace

Result<std::string> sealEnvelope(const Identity& sender, const PublicKey& recipient,
                                 std::string_view payload) {
  initCrypto();
  std::array<uint8_t, 32> recipientX{};
  if (crypto_sign_ed25519_pk_to_curve25519(recipientX.data(), recipient.bytes.data()) != 0) {
    return invalidArgument("envelope: recipient is not a valid Ed25519 public key");
  }
  std::array<uint8_t, 32> ephPk{};
  std::array<uint8_t, 32> ephSk{};
  Wipe wipeEph{ephSk};
  crypto_box_keypair(ephPk.data(), ephSk.data());
  std::array<uint8_t, 32> shared{};
  Wipe wipeShared{shared};
  if (crypto_scalarmult(shared.data(), ephSk.data(), recipientX.data()) != 0) {
    return invalidArgument("envelope: recipient key has low order");
  }
  Key key = streamKey(shared, ephPk.data(), recipientX.data());
  Wipe wipeKey{key};

  size_t chunks = payload.empty() ? 1 : (payload.size() + kEnvelopeChunk - 1) / kEnvelopeChunk;
  std::string out;
  out.reserve(kHeaderBytes + payload.size() + chunks * (kLenBytes + kABytes) + kSigBytes);
  out.append(kMagic);
  out.push_back(static_cast<char>(kVersion));
  out.append(asView(sender.publicKey().bytes.data(), kKeyBytes));
  out.append(asView(recipient.bytes.data(), kKeyBytes));
  out.append(asView(ephPk.data(), kKeyBytes));

  crypto_secretstream_xchacha20poly1305_state state;
  Wipe wipeState{state};
  std::array<uint8_t, kStreamHeaderBytes> streamHeader{};
  crypto_secretstream_xchacha20poly1305_init_push(&state, streamHeader.data(), key.data());
  out.append(asView(streamHeader.data(), streamHeader.size()));

  for (size_t i = 0; i < chunks; ++i) {
    std::string_view plain = payload.substr(i * kEnvelopeChunk, kEnvelopeChunk);
    bool last = i + 1 == chunks;
    size_t ctLen = plain.size() + kABytes;
    putU32(out, static_cast<uint32_t>(ctLen));
    size_t pos = out.size();
    out.resize(pos + ctLen);
    crypto_secretstream_xchacha20poly1305_push(
        &state, reinterpret_cast<uint8_t*>(out.data() + pos), nullptr, asBytes(plain), plain.size(),
        nullptr, 0,
        last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
             : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
  }
  Hash256 digest = blake2b256(out);
  Signature sig = sender.sign(asView(digest.data(), digest.size()));
  out.append(asView(sig.bytes.data(), sig.bytes.size()));
  return out;
}

Result<OpenedEnvelope> openEnvelope(const Identity& recipient, std::string_view envelope,
                                    const std::optional<PublicKey>& expectedSender) {
  initCrypto();
  const uint8_t* data = asBytes(envelope);
  const size_t size = envelope.size();
  if (size < kHeaderBytes) {
    return invalidArgument("envelope truncated at " + at(size) + ": the header needs " +
                           std::to_string(kHeaderBytes) + " bytes");
  }
  if (envelope.substr(0, kMagic.size()) != kMagic) {
    return invalidArgument("envelope: bad magic (not an envelope)");
  }
  if (data[kMagic.size()] != kVersion) {
    return invalidArgument("envelope: unsupported version " + std::to_string(data[kMagic.size()]) +
                           " (expected 1)");
  }
  if (!std::equal(recipient.publicKey().bytes.begin(), recipient.publicKey().bytes.end(),
                  data + kRecipientOff)) {
    return permissionDenied("envelope is addressed to another key");
  }

  // Walk the chunk framing without decrypting, to find where the signature starts. Every chunk
  // must fit in the input with room for the signature after it.
  struct Chunk {
    size_t offset;  // of the ciphertext
    size_t length;
  };
  std::vector<Chunk> chunks;
  size_t off = kHeaderBytes;
  while (size - off > kSigBytes) {
    if (size - off - kSigBytes < kLenBytes) {
      return invalidArgument("envelope truncated at " + at(size) + ": incomplete chunk length at " +
                             at(off));
    }
    size_t len = getU32(data + off);
    if (len < kABytes || len > kMaxChunkCiphertext) {
      return invalidArgument("envelope: chunk at " + at(off) + " has length " +
                             std::to_string(len) + ", expected " + std::to_string(kABytes) + ".." +
                             std::to_string(kMaxChunkCiphertext));
    }
    if (size - off - kLenBytes - kSigBytes < len) {
      return invalidArgument("envelope truncated at " + at(size) + ": chunk at " + at(off) +
                             " needs " + std::to_string(len) + " bytes plus the signature");
    }
    chunks.push_back({off + kLenBytes, len});
    off += kLenBytes + len;
  }
  if (size - off < kSigBytes) {
    return invalidArgument("envelope truncated at " + at(size) + ": missing the " +
                           std::to_string(kSigBytes) + "-byte signature after " + at(off));
  }
  if (chunks.empty()) {
    return invalidArgument("envelope truncated at " + at(off) + ": no payload chunk");
  }

  PublicKey sender;
  std::copy_n(data + kSenderOff, kKeyBytes, sender.bytes.begin());
  Signature sig;
  std::copy_n(data + off, kSigBytes, sig.bytes.begin());
  Hash256 digest = blake2b256(envelope.substr(0, off));
  if (!verify(sender, asView(digest.data(), digest.size()), sig)) {
    return unauthenticated("envelope: bad sender signature");
  }
  if (expectedSender && *expectedSender != sender) {
    return permissionDenied("envelope: signed by " + sender.hex() + ", expected " +
                            expectedSender->hex());
  }

  std::array<uint8_t, 32> recipientX{};
  std::array<uint8_t, 32> recipientXSk{};
  Wipe wipeXSk{recipientXSk};
  if (crypto_sign_ed25519_pk_to_curve25519(recipientX.data(), recipient.publicKey().bytes.data()) !=
      0) {
    return invalidArgument("envelope: opener's public key is not a valid Ed25519 key");
  }
  crypto_sign_ed25519_sk_to_curve25519(recipientXSk.data(), recipient.secretKey().data());
  std::array<uint8_t, 32> shared{};
  Wipe wipeShared{shared};
  if (crypto_scalarmult(shared.data(), recipientXSk.data(), data + kEphemeralOff) != 0) {
    return unauthenticated("envelope: invalid ephemeral key");
  }
  Key key = streamKey(shared, data + kEphemeralOff, recipientX.data());
  Wipe wipeKey{key};
  crypto_secretstream_xchacha20poly1305_state state;
  Wipe wipeState{state};
  if (crypto_secretstream_xchacha20poly1305_init_pull(&state, data + kStreamHeaderOff,
                                                      key.data()) != 0) {
    return unauthenticated("envelope: invalid stream header");
  }

  OpenedEnvelope opened{sender, {}};
  size_t plainTotal = 0;
  for (const Chunk& c : chunks) plainTotal += c.length - kABytes;
  opened.payload.resize(plainTotal);
  size_t written = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    unsigned long long plainLen = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(
            &state, reinterpret_cast<uint8_t*>(opened.payload.data() + written), &plainLen, &tag,
            data + c.offset, c.length, nullptr, 0) != 0) {
      sodium_memzero(opened.payload.data(), opened.payload.size());
      return unauthenticated("envelope: chunk at " + at(c.offset - kLenBytes) +
                             " failed to decrypt");
    }
    written += plainLen;
    bool final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    bool last = i + 1 == chunks.size();
    if (final && !last) {
      sodium_memzero(opened.payload.data(), opened.payload.size());
      return invalidArgument("envelope: trailing data after the final chunk, at " +
                             at(c.offset + c.length));
    }
    if (!final && last) {
      sodium_memzero(opened.payload.data(), opened.payload.size());
      return invalidArgument("envelope truncated at " + at(c.offset + c.length) +
                             ": the last chunk does not carry the final tag");
    }
  }
  opened.payload.resize(written);
  return opened;
}

}  // namespace mercato::crypto
