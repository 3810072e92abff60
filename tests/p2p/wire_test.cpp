// Unit tests of the p2p building blocks: peer ids, network keys, identity records, the packet
// codec (signing, encryption, limits) and the replay window / rate limiter.
#include <gtest/gtest.h>

#include "p2p/guard.hpp"
#include "p2p/identity_record.hpp"
#include "p2p/network.hpp"
#include "p2p/wire.hpp"

namespace mercato::p2p {
namespace {

crypto::Identity idFromByte(uint8_t b) {
  std::array<uint8_t, 32> seed{};
  seed.fill(b);
  return std::move(crypto::Identity::fromSeed(seed).value());
}

TEST(PeerId, RoundTripsAndCatchesTypos) {
  auto id = idFromByte(1);
  const std::string pid = peerIdFromKey(id.publicKey());
  EXPECT_EQ(pid.substr(0, 6), "mpeer1");
  EXPECT_EQ(pid.size(), 64u);
  auto back = keyFromPeerId(pid);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(*back, id.publicKey());
  std::string typo = pid;
  typo[20] = typo[20] == 'a' ? 'b' : 'a';
  auto bad = keyFromPeerId(typo);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("checksum"), std::string::npos);
  EXPECT_FALSE(keyFromPeerId("mer1abc").isOk());
  EXPECT_FALSE(keyFromPeerId(pid.substr(0, 40)).isOk());
}

TEST(NetworkKey, TextFormRoundTripsAndIdsDependOnlyOnTheKey) {
  auto net = Network::createPrivate("partners");
  ASSERT_TRUE(net.isOk());
  const std::string text = net->keyText();
  EXPECT_EQ(text.substr(0, 5), "mnet1");
  auto back = Network::fromKeyText(text + "\n");
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(back->name(), "partners");
  EXPECT_EQ(back->id(), net->id());
  EXPECT_EQ(back->aeadKey(), net->aeadKey());
  EXPECT_TRUE(back->isPrivate());
  // Same name, another key: another network.
  auto other = Network::createPrivate("partners");
  EXPECT_NE(other->id(), net->id());
  EXPECT_NE(Network::publicNetwork().id(), net->id());
  EXPECT_EQ(Network::publicNetwork().id(), Network::publicNetwork().id());
  EXPECT_FALSE(Network::publicNetwork().isPrivate());
  // The wire id reveals neither key nor name.
  EXPECT_EQ(net->id().hex().find("partners"), std::string::npos);

  std::string typo = text;
  typo[30] = typo[30] == 'a' ? 'b' : 'a';
  auto bad = Network::fromKeyText(typo);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("checksum"), std::string::npos);
  EXPECT_FALSE(Network::fromKeyText("mnet1").isOk());
  EXPECT_FALSE(Network::fromKeyText("nope").isOk());
  EXPECT_FALSE(Network::createPrivate("public").isOk());
  EXPECT_FALSE(Network::createPrivate("").isOk());
  EXPECT_FALSE(Network::createPrivate("Has Space").isOk());
  EXPECT_FALSE(Network::createPrivate(std::string(33, 'a')).isOk());
}

IdentityRecord sampleRecord(const crypto::Identity& id, uint64_t seq) {
  IdentityRecord r;
  r.seq = seq;
  r.name = "node-é";
  r.addresses = {"10.0.0.1:7401"};
  r.udpPort = 7401;
  r.httpPort = 7400;
  r.roles = {"p2p", "provider"};
  EXPECT_TRUE(r.sign(id).isOk());
  return r;
}

TEST(IdentityRecord, SignsEncodesAndDetectsTampering) {
  auto id = idFromByte(2);
  IdentityRecord r = sampleRecord(id, 7);
  EXPECT_TRUE(r.verify());
  auto back = IdentityRecord::decode(r.encode());
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_TRUE(back->verify());
  EXPECT_EQ(back->name, r.name);
  EXPECT_EQ(back->roles, r.roles);
  EXPECT_EQ(back->seq, 7u);
  back->seq = 8;
  EXPECT_FALSE(back->verify());
  // Truncated, trailing bytes, limits, unclean labels.
  const std::string enc = r.encode();
  EXPECT_FALSE(IdentityRecord::decode(enc.substr(0, enc.size() - 1)).isOk());
  EXPECT_FALSE(IdentityRecord::decode(enc + "x").isOk());
  IdentityRecord big = r;
  big.name = std::string(65, 'n');
  EXPECT_FALSE(big.sign(id).isOk());
  IdentityRecord ctl = r;
  ctl.name = "bad\x1b[31m";
  EXPECT_FALSE(ctl.sign(id).isOk());
  IdentityRecord utf = r;
  utf.name = "\xed\xa0\x80";  // a UTF-16 surrogate: not valid UTF-8
  EXPECT_FALSE(utf.sign(id).isOk());
  EXPECT_EQ(r.toJson()["peerId"], peerIdFromKey(id.publicKey()));
}

JoinedNetworks joinedOf(const std::vector<Network>& nets) {
  JoinedNetworks j;
  for (const auto& n : nets) j.push_back(&n);
  return j;
}

Message pong() {
  Message m;
  m.type = MsgType::kPong;
  m.seq = 42;
  m.timeMs = 1'700'000'000'000;
  m.nonce = 99;
  m.known.push_back({idFromByte(9).publicKey(), "10.1.2.3:7401"});
  m.known.push_back({idFromByte(8).publicKey(), "[::1]:9"});
  return m;
}

TEST(Wire, PublicAndPrivatePacketsRoundTrip) {
  auto self = idFromByte(3);
  auto priv = *Network::createPrivate("lab");
  std::vector<Network> nets = {Network::publicNetwork(), priv};
  const JoinedNetworks lookup = joinedOf(nets);
  for (const Network& net : nets) {
    auto pkt = sealPacket(net, self, pong());
    ASSERT_TRUE(pkt.isOk()) << pkt.status().toString();
    OpenResult o = openPacket(*pkt, lookup);
    ASSERT_TRUE(o.opened) << dropReasonName(o.reason) << " " << o.detail;
    EXPECT_EQ(o.opened->network->id(), net.id());
    const Message& m = o.opened->message;
    EXPECT_EQ(m.type, MsgType::kPong);
    EXPECT_EQ(m.sender, self.publicKey());
    EXPECT_EQ(m.seq, 42u);
    EXPECT_EQ(m.nonce, 99u);
    ASSERT_EQ(m.known.size(), 2u);
    EXPECT_EQ(m.known[1].endpoint, "[::1]:9");
  }
  // A private packet never shows its plaintext.
  auto pkt = sealPacket(priv, self, pong());
  EXPECT_EQ(pkt->find("10.1.2.3"), std::string::npos);
  auto pub = sealPacket(nets[0], self, pong());
  EXPECT_NE(pub->find("10.1.2.3"), std::string::npos);

  Message rec;
  rec.type = MsgType::kSummaryResponse;
  rec.nonce = 5;
  rec.record = sampleRecord(self, 1).encode();
  rec.summary = R"({"cpu":{"total":4}})";
  auto s = sealPacket(priv, self, rec);
  OpenResult o = openPacket(*s, lookup);
  ASSERT_TRUE(o.opened);
  EXPECT_EQ(o.opened->message.summary, rec.summary);
  EXPECT_TRUE(IdentityRecord::decode(o.opened->message.record)->verify());
}

TEST(Wire, EveryBadPacketIsDroppedWithItsReason) {
  auto self = idFromByte(4);
  auto priv = *Network::createPrivate("lab");
  auto wrongKey = *Network::createPrivate("lab");
  std::vector<Network> nets = {Network::publicNetwork(), priv};
  const JoinedNetworks lookup = joinedOf(nets);
  auto reasonOf = [&](std::string_view bytes) { return openPacket(bytes, lookup).reason; };

  EXPECT_EQ(reasonOf(""), DropReason::kMalformed);
  EXPECT_EQ(reasonOf("hello world, not a packet"), DropReason::kMalformed);
  EXPECT_EQ(reasonOf(std::string(kMaxPacketBytes + 1, 'x')), DropReason::kOversized);

  std::string pub = *sealPacket(nets[0], self, pong());
  std::string badSig = pub;
  badSig[badSig.size() - 3] ^= 1;
  EXPECT_EQ(reasonOf(badSig), DropReason::kBadSignature);
  std::string badBody = pub;
  badBody[60] ^= 1;  // inside the signed part: the signature no longer matches
  EXPECT_EQ(reasonOf(badBody), DropReason::kBadSignature);
  EXPECT_EQ(reasonOf(pub.substr(0, pub.size() - 1)), DropReason::kMalformed);
  EXPECT_EQ(reasonOf(pub + "x"), DropReason::kMalformed);
  std::string badVersion = pub;
  badVersion[4] = 9;
  EXPECT_EQ(reasonOf(badVersion), DropReason::kMalformed);

  // A network we are not in (including the same name under another key).
  EXPECT_EQ(reasonOf(*sealPacket(wrongKey, self, pong())), DropReason::kUnknownNetwork);
  // Right id, tampered ciphertext or wrong key material: the AEAD tag fails.
  std::string prv = *sealPacket(priv, self, pong());
  std::string flipped = prv;
  flipped[prv.size() - 1] ^= 1;
  EXPECT_EQ(reasonOf(flipped), DropReason::kDecryptFailed);
  std::string header = prv;
  header[30] ^= 1;  // the nonce selects the tag: another nonce, no network
  EXPECT_EQ(reasonOf(header), DropReason::kUnknownNetwork);
  // The tag changes with every packet: outsiders cannot group a network's packets.
  EXPECT_NE(prv.substr(6, 16), sealPacket(priv, self, pong())->substr(6, 16));
  EXPECT_EQ(reasonOf(prv.substr(0, 50)), DropReason::kMalformed);
  // A private packet relabelled as public matches no public network.
  std::string kindSwap = prv;
  kindSwap[5] = 0;
  EXPECT_EQ(reasonOf(kindSwap), DropReason::kUnknownNetwork);
  // Encoder limits.
  Message tooMany = pong();
  tooMany.known.assign(kMaxGossipEntries + 1, tooMany.known[0]);
  EXPECT_FALSE(sealPacket(nets[0], self, tooMany).isOk());
  Message badEndpoint = pong();
  badEndpoint.known[0].endpoint = "evil host";
  EXPECT_FALSE(sealPacket(nets[0], self, badEndpoint).isOk());
  Message huge;
  huge.type = MsgType::kSummaryResponse;
  huge.summary = std::string(kMaxPacketBytes, 'x');
  EXPECT_EQ(sealPacket(nets[0], self, huge).status().code(), Code::kTooLarge);
}

TEST(ReplayGuard, AcceptsEachMessageOnceWithinTheWindow) {
  ReplayGuard g(2, 60'000);
  auto a = idFromByte(5).publicKey();
  const int64_t now = 1'000'000;
  EXPECT_TRUE(g.accept(a, 100, now, now));
  EXPECT_FALSE(g.accept(a, 100, now, now));  // exact replay
  EXPECT_TRUE(g.accept(a, 102, now, now));
  EXPECT_TRUE(g.accept(a, 101, now, now));  // late but unseen
  EXPECT_FALSE(g.accept(a, 101, now, now));
  EXPECT_TRUE(g.accept(a, 200, now, now));
  EXPECT_FALSE(g.accept(a, 130, now, now));           // below the 64-message window
  EXPECT_FALSE(g.accept(a, 300, now - 61'000, now));  // stale timestamp
  EXPECT_FALSE(g.accept(a, 301, now + 61'000, now));  // from the future
  // Bounded: the least recently heard sender is forgotten.
  auto b = idFromByte(6).publicKey(), c = idFromByte(7).publicKey();
  EXPECT_TRUE(g.accept(b, 1, now, now));
  EXPECT_TRUE(g.accept(c, 1, now, now));
  EXPECT_EQ(g.senders(), 2u);
}

TEST(RateLimiter, BurstThenRefill) {
  RateLimiter r(10, 5, 2);
  int64_t t = 0;
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += r.allow("1.2.3.4:5", t);
  EXPECT_EQ(allowed, 5);
  t += 1'000'000;  // one second: 10 tokens, capped at the burst of 5
  allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += r.allow("1.2.3.4:5", t);
  EXPECT_EQ(allowed, 5);
  EXPECT_TRUE(r.allow("5.6.7.8:9", t));  // another source has its own bucket
  // Over maxSources with every bucket busy: new sources are refused, not tracked.
  EXPECT_FALSE(r.allow("9.9.9.9:9", t));
  t += 10'000'000;  // everybody idle: their buckets are forgotten
  EXPECT_TRUE(r.allow("9.9.9.9:9", t));
}

}  // namespace
}  // namespace mercato::p2p
