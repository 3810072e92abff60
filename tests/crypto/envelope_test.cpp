#include "crypto/envelope.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "crypto/hash.hpp"

namespace mercato::crypto {
namespace {

// Offsets of the documented wire format.
constexpr size_t kHeaderBytes = 4 + 1 + 32 + 32 + 32 + 24;
constexpr size_t kSigBytes = 64;
constexpr size_t kABytes = crypto_secretstream_xchacha20poly1305_ABYTES;

Identity identityFromFill(uint8_t fill) {
  std::array<uint8_t, 32> seed{};
  seed.fill(fill);
  return std::move(Identity::fromSeed(seed)).value();
}

std::string patternPayload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

// Signs `body` the way the sender does, so tests can build envelopes whose signature is valid
// but whose stream is not (missing final tag, data after it).
std::string resign(const Identity& sender, std::string body) {
  Hash256 digest = blake2b256(body);
  Signature sig =
      sender.sign(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  body.append(reinterpret_cast<const char*>(sig.bytes.data()), sig.bytes.size());
  return body;
}

std::string withoutSignature(const std::string& env) { return env.substr(0, env.size() - 64); }

// Offsets (of the length field) of every chunk, walking the framing.
std::vector<size_t> chunkOffsets(const std::string& env) {
  std::vector<size_t> out;
  size_t off = kHeaderBytes;
  while (env.size() - off > kSigBytes) {
    out.push_back(off);
    auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(env[off + i])); };
    uint32_t len = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
    off += 4 + len;
  }
  return out;
}

class EnvelopeTest : public ::testing::Test {
 protected:
  Identity sender_ = identityFromFill(0x53);
  Identity recipient_ = identityFromFill(0x52);
};

TEST_F(EnvelopeTest, RoundtripAcrossChunkBoundaries) {
  for (size_t n : {size_t{0}, size_t{1}, kEnvelopeChunk - 1, kEnvelopeChunk, kEnvelopeChunk + 1,
                   size_t{300 * 1024}}) {
    std::string payload = patternPayload(n);
    auto sealed = sealEnvelope(sender_, recipient_.publicKey(), payload);
    ASSERT_TRUE(sealed.isOk()) << sealed.status().toString();
    size_t chunks = n == 0 ? 1 : (n + kEnvelopeChunk - 1) / kEnvelopeChunk;
    EXPECT_EQ(sealed->size(), kHeaderBytes + n + chunks * (4 + kABytes) + kSigBytes) << n;
    EXPECT_EQ(chunkOffsets(*sealed).size(), chunks);
    EXPECT_EQ(sealed->substr(0, 5), std::string("MENV\x01", 5));
    auto opened = openEnvelope(recipient_, *sealed, sender_.publicKey());
    ASSERT_TRUE(opened.isOk()) << n << ": " << opened.status().toString();
    EXPECT_EQ(opened->sender, sender_.publicKey());
    EXPECT_EQ(opened->payload, payload) << n;
  }
}

TEST_F(EnvelopeTest, EachSealUsesAFreshEphemeralKey) {
  auto a = sealEnvelope(sender_, recipient_.publicKey(), "same");
  auto b = sealEnvelope(sender_, recipient_.publicKey(), "same");
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_NE(*a, *b);
}

TEST_F(EnvelopeTest, EveryFlippedByteIsAnError) {
  // Two chunks, so both a middle and a final chunk are covered; flipping every byte of a
  // 70 KB envelope is cheap because the signature is checked before any decryption.
  std::string payload = patternPayload(kEnvelopeChunk + 100);
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), payload)).value();
  for (size_t i = 0; i < env.size(); ++i) {
    // All header bytes, then a sample of each chunk, and all signature bytes.
    bool inChunkBody = i >= kHeaderBytes + 64 && i < env.size() - kSigBytes - 64;
    if (inChunkBody && i % 97 != 0) continue;
    std::string bad = env;
    bad[i] ^= 0x01;
    auto r = openEnvelope(recipient_, bad);
    ASSERT_FALSE(r.isOk()) << "flipped byte " << i;
    EXPECT_NE(r.status().code(), Code::kOk);
  }
}

TEST_F(EnvelopeTest, TamperedRegionsGiveTheDocumentedCodes) {
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), "payload")).value();
  auto flip = [&](size_t i) {
    std::string bad = env;
    bad[i] ^= 0x80;
    return openEnvelope(recipient_, bad).status();
  };
  EXPECT_EQ(flip(0).code(), Code::kInvalidArgument);                     // magic
  EXPECT_EQ(flip(4).code(), Code::kInvalidArgument);                     // version
  EXPECT_EQ(flip(5).code(), Code::kUnauthenticated);                     // sender pk
  EXPECT_EQ(flip(37).code(), Code::kPermissionDenied);                   // recipient pk
  EXPECT_EQ(flip(69).code(), Code::kUnauthenticated);                    // ephemeral pk
  EXPECT_EQ(flip(101).code(), Code::kUnauthenticated);                   // stream header
  EXPECT_EQ(flip(kHeaderBytes + 4 + 3).code(), Code::kUnauthenticated);  // ciphertext
  EXPECT_EQ(flip(env.size() - 1).code(), Code::kUnauthenticated);        // signature
  EXPECT_EQ(flip(kHeaderBytes).code(), Code::kInvalidArgument);          // chunk length
}

TEST_F(EnvelopeTest, WrongRecipientIsPermissionDenied) {
  Identity other = identityFromFill(0x11);
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), "secret")).value();
  auto r = openEnvelope(other, env);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "envelope is addressed to another key");
}

TEST_F(EnvelopeTest, ExpectedSenderMismatch) {
  Identity other = identityFromFill(0x11);
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), "m")).value();
  auto r = openEnvelope(recipient_, env, other.publicKey());
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_TRUE(openEnvelope(recipient_, env, sender_.publicKey()).isOk());
}

TEST_F(EnvelopeTest, TruncationAtAnyOffsetIsAnError) {
  std::string payload = patternPayload(2 * kEnvelopeChunk + 10);
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), payload)).value();
  std::vector<size_t> cuts;
  for (size_t i = 0; i < 300; ++i) cuts.push_back(i);
  for (size_t off : chunkOffsets(env)) {
    for (size_t d = 0; d < 8; ++d) cuts.push_back(off + d);
    cuts.push_back(off + 64);
    cuts.push_back(off + 64 + 4);
  }
  for (size_t i = 1; i <= 200; ++i) cuts.push_back(env.size() - i);
  for (size_t i = 0; i < env.size(); i += 1009) cuts.push_back(i);
  for (size_t cut : cuts) {
    auto r = openEnvelope(recipient_, std::string_view(env).substr(0, cut));
    ASSERT_FALSE(r.isOk()) << "cut at " << cut;
    EXPECT_TRUE(r.status().code() == Code::kInvalidArgument ||
                r.status().code() == Code::kUnauthenticated)
        << cut << ": " << r.status().toString();
  }
  // A cut inside a chunk names the offsets.
  auto r = openEnvelope(recipient_, std::string_view(env).substr(0, kHeaderBytes + 1000));
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("truncated at byte " + std::to_string(kHeaderBytes + 1000)),
            std::string::npos)
      << r.status().toString();
}

TEST_F(EnvelopeTest, SignedButCutStreamIsDetectedByTheFinalTag) {
  // A sender (buggy or hostile) who signs a stream cut at a chunk boundary: the signature
  // holds, but the missing final tag still exposes the truncation.
  std::string payload = patternPayload(2 * kEnvelopeChunk + 10);
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), payload)).value();
  auto offsets = chunkOffsets(env);
  ASSERT_EQ(offsets.size(), 3u);
  std::string cut = resign(sender_, env.substr(0, offsets[2]));
  auto r = openEnvelope(recipient_, cut);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("final tag"), std::string::npos) << r.status().toString();
  EXPECT_NE(r.status().message().find("byte " + std::to_string(offsets[2])), std::string::npos)
      << r.status().toString();
}

TEST_F(EnvelopeTest, TrailingDataIsRejected) {
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), "data")).value();
  for (size_t extra : {1, 3, 4, 17, 64, 100, 1000}) {
    std::string longer = env + std::string(extra, '\x00');
    EXPECT_FALSE(openEnvelope(recipient_, longer).isOk()) << extra;
    std::string longer2 = env + patternPayload(extra);
    EXPECT_FALSE(openEnvelope(recipient_, longer2).isOk()) << extra;
  }
  // A signed chunk after the final one.
  std::string body = withoutSignature(env);
  std::string chunk = body.substr(kHeaderBytes);
  auto r = openEnvelope(recipient_, resign(sender_, body + chunk));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("after the final chunk"), std::string::npos)
      << r.status().toString();
}

TEST_F(EnvelopeTest, HostileChunkLengthIsBounded) {
  std::string env = std::move(sealEnvelope(sender_, recipient_.publicKey(), "x")).value();
  for (uint32_t len : {0u, 16u, 0xffffffffu, uint32_t(kEnvelopeChunk + kABytes + 1)}) {
    std::string bad = env;
    for (int i = 0; i < 4; ++i) bad[kHeaderBytes + i] = static_cast<char>(len >> (24 - 8 * i));
    auto r = openEnvelope(recipient_, resign(sender_, withoutSignature(bad)));
    ASSERT_FALSE(r.isOk()) << len;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << len;
  }
}

TEST_F(EnvelopeTest, RejectsInvalidRecipientKey) {
  PublicKey notOnCurve;
  notOnCurve.bytes.fill(0xff);
  EXPECT_FALSE(sealEnvelope(sender_, notOnCurve, "x").isOk());
}

// Builds the seed corpus of tests/fuzz/corpus/envelope_fuzz and checks each input behaves as
// labelled. To regenerate the committed corpus, from the repository root run
//   MERCATO_ENVELOPE_CORPUS_DIR=tests/fuzz/corpus/envelope_fuzz
//   build/bin/crypto_tests --gtest_filter='EnvelopeCorpus*'
// (one command line).
// The fuzz target opens with the same fixed recipient (seed of 0x52 bytes).
TEST(EnvelopeCorpusTest, GeneratesSeedCorpus) {
  Identity sender = identityFromFill(0x53);
  Identity recipient = identityFromFill(0x52);
  Identity stranger = identityFromFill(0x11);
  auto seal = [&](const PublicKey& to, std::string_view payload) {
    return std::move(sealEnvelope(sender, to, payload)).value();
  };
  std::string valid = seal(recipient.publicKey(), "hello mercato");
  std::string twoChunks = seal(recipient.publicKey(), patternPayload(kEnvelopeChunk + 5));
  std::string validBody = withoutSignature(valid);
  // Multi-chunk inputs are large; the one kept reaches the final-tag check past the signature.
  std::string flipped = valid;
  flipped[kHeaderBytes + 6] ^= 0x20;
  std::string hugeLength = valid;
  for (int i = 0; i < 4; ++i) hugeLength[kHeaderBytes + i] = '\xff';
  std::string garbage;
  for (int i = 0; i < 200; ++i) garbage.push_back(static_cast<char>((i * 73 + 11) & 0xff));

  struct Input {
    std::string name;
    std::string bytes;
    bool opens;
  };
  std::vector<Input> inputs = {
      {"valid", valid, true},
      {"valid_empty", seal(recipient.publicKey(), ""), true},
      {"truncated_header", valid.substr(0, 60), false},
      {"truncated_chunk", valid.substr(0, kHeaderBytes + 10), false},
      {"truncated_signature", valid.substr(0, valid.size() - 20), false},
      {"signed_without_final", resign(sender, twoChunks.substr(0, chunkOffsets(twoChunks)[1])),
       false},
      {"signed_after_final", resign(sender, validBody + validBody.substr(kHeaderBytes)), false},
      {"flipped_byte", flipped, false},
      {"huge_length", hugeLength, false},
      {"trailing", valid + "x", false},
      {"other_recipient", seal(stranger.publicKey(), "hi"), false},
      {"magic_only", std::string("MENV\x01", 5), false},
      {"empty", "", false},
      {"garbage", garbage, false},
  };

  namespace fs = std::filesystem;
  const char* envDir = std::getenv("MERCATO_ENVELOPE_CORPUS_DIR");
  fs::path dir = envDir ? fs::path(envDir) : fs::temp_directory_path() / "mercato-envcorpus-test";
  fs::create_directories(dir);
  for (const auto& in : inputs) {
    auto r = openEnvelope(recipient, in.bytes, sender.publicKey());
    EXPECT_EQ(r.isOk(), in.opens) << in.name << ": " << r.status().toString();
    std::ofstream out(dir / in.name, std::ios::binary | std::ios::trunc);
    out.write(in.bytes.data(), static_cast<std::streamsize>(in.bytes.size()));
    ASSERT_TRUE(out.good()) << in.name;
  }
  if (!envDir) fs::remove_all(dir);
}

}  // namespace
}  // namespace mercato::crypto
