// Transactions: canonical encoding, signing and strict decoding of untrusted wire JSON.
#include <gtest/gtest.h>

#include "crypto/hash.hpp"
#include "harness.hpp"

namespace mercato::ledger::testing {
namespace {

using nlohmann::json;

Tx sampleTransfer(const crypto::Identity& from, const crypto::Identity& to) {
  return Tx{"test-chain", TxKind::kTransfer, from.address(), 7, TransferBody{to.address(), 1234}};
}

TEST(Tx, CanonicalSigningBytesAreStableAndSorted) {
  auto a = key(1), b = key(2);
  const std::string bytes = signingBytes(sampleTransfer(a, b));
  EXPECT_EQ(bytes.rfind("mercato-tx-v1\n{\"body\":{\"amount\":1234,\"to\":\"", 0), 0u) << bytes;
  EXPECT_NE(bytes.find("\"chain\":\"test-chain\",\"from\":\"" + a.address() +
                       "\",\"kind\":\"transfer\",\"nonce\":7}"),
            std::string::npos)
      << bytes;
  EXPECT_EQ(bytes.find(' '), std::string::npos);
  EXPECT_FALSE(canonicalJson(json{{"x", 1.5}}).isOk());
}

// signingBytes() writes transfers and mints directly; the text must equal the generic
// canonical encoding of the same object, including for strings that need escaping.
TEST(Tx, DirectEncodingOfTransfersAndMintsEqualsTheCanonicalJson) {
  auto a = key(1), b = key(2);
  const std::vector<std::string> chains = {"test-chain", "q\"uote\\back", "tab\tnl\n\x01",
                                           "caf\xc3\xa9 \xe2\x82\xac", ""};
  for (const auto& chain : chains) {
    for (const Tx& tx :
         {Tx{chain, TxKind::kTransfer, a.address(), 1, TransferBody{b.address(), 5}},
          Tx{chain, TxKind::kMint, a.address(), UINT64_MAX, MintBody{b.address(), INT64_MAX}},
          Tx{chain, TxKind::kTransfer, "odd\"from", 42, TransferBody{"to\\x", -3}}}) {
      const json j = {{"chain", tx.chainId},
                      {"kind", std::string(txKindName(tx.kind))},
                      {"from", tx.from},
                      {"nonce", tx.nonce},
                      {"body", bodyToJson(tx.body)}};
      EXPECT_EQ(signingBytes(tx), "mercato-tx-v1\n" + canonicalJson(j).value()) << chain;
    }
  }
}

TEST(Tx, SignDecodeVerifyRoundTrip) {
  auto a = key(1), b = key(2);
  SignedTx s = signTx(sampleTransfer(a, b), a);
  auto d = decodeSignedTx(json::parse(toJson(s).dump()));
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_EQ(d->hash, s.hash);
  EXPECT_TRUE(verifySignature(*d).isOk());
  EXPECT_EQ(std::get<TransferBody>(d->tx.body).amount, 1234);
}

TEST(Tx, TamperedFieldsFailVerification) {
  auto a = key(1), b = key(2);
  json wire = toJson(signTx(sampleTransfer(a, b), a));
  for (auto mutate : std::vector<std::function<void(json&)>>{
           [](json& w) { w["tx"]["body"]["amount"] = 999999; },
           [](json& w) { w["tx"]["nonce"] = 8; },
           [](json& w) { w["tx"]["chain"] = "other"; },
       }) {
    json w = wire;
    mutate(w);
    auto d = decodeSignedTx(w);
    ASSERT_TRUE(d.isOk());
    auto v = verifySignature(*d);
    EXPECT_EQ(v.code(), Code::kUnauthenticated);
  }
}

TEST(Tx, DecodeRejectsMalformedInputWithFieldPaths) {
  auto a = key(1), b = key(2);
  const json wire = toJson(signTx(sampleTransfer(a, b), a));
  struct Case {
    std::function<void(json&)> mutate;
    std::string expect;
  };
  std::vector<Case> cases = {
      {[](json& w) { w = json::array(); }, "expected a JSON object"},
      {[](json& w) { w["extra"] = 1; }, "extra: unknown field"},
      {[](json& w) { w["signer"] = "abcd"; }, "signer: expected 64 hex"},
      {[](json& w) { w["sig"] = 5; }, "sig: expected a string"},
      {[](json& w) { w["tx"]["kind"] = "steal"; }, "tx.kind 'steal'"},
      {[](json& w) { w["tx"]["nonce"] = -1; }, "tx.nonce: must not be negative"},
      {[](json& w) { w["tx"]["nonce"] = 0; }, "nonces start at 1"},
      {[](json& w) { w["tx"]["body"]["amount"] = 1.5; }, "tx.body.amount: expected an integer"},
      {[](json& w) { w["tx"]["body"]["amount"] = 0; }, "greater than zero"},
      {[](json& w) { w["tx"]["body"]["to"] = "mer1notanaddress"; }, "tx.body.to"},
      {[](json& w) { w["tx"]["body"].erase("to"); }, "tx.body.to: required field is missing"},
      {[](json& w) { w["tx"]["body"]["memo"] = "x"; }, "tx.body.memo: unknown field"},
      {[&](json& w) { w["tx"]["from"] = b.address(); }, "not the address of the signer"},
  };
  for (const auto& c : cases) {
    json w = wire;
    c.mutate(w);
    auto d = decodeSignedTx(w);
    ASSERT_FALSE(d.isOk()) << c.expect;
    EXPECT_NE(d.status().message().find(c.expect), std::string::npos)
        << "got: " << d.status().message() << " expected: " << c.expect;
  }
}

TEST(Tx, ProviderBodyValidation) {
  auto p = key(3);
  Harness h;
  ProviderBody body = h.providerBody();
  json wire = toJson(signTx(Tx{"c", TxKind::kProviderRegister, p.address(), 1, body}, p));
  ASSERT_TRUE(decodeSignedTx(wire).isOk());
  json bad = wire;
  bad["tx"]["body"]["gatewayUrl"] = "ftp://x";
  EXPECT_NE(decodeSignedTx(bad).status().message().find("gatewayUrl"), std::string::npos);
  bad = wire;
  bad["tx"]["body"]["attributes"]["Bad Key"] = "v";
  EXPECT_NE(decodeSignedTx(bad).status().message().find("attributes.Bad Key"), std::string::npos);
  bad = wire;
  bad["tx"]["body"]["prices"]["cpuSecond"] = -5;
  EXPECT_NE(decodeSignedTx(bad).status().message().find("prices.cpuSecond"), std::string::npos);
}

TEST(Tx, EscrowIdsAreDeterministicPerPublisherAndNonce) {
  EXPECT_EQ(escrowIdFor("mer1a", 1), escrowIdFor("mer1a", 1));
  EXPECT_NE(escrowIdFor("mer1a", 1), escrowIdFor("mer1a", 2));
  EXPECT_NE(escrowIdFor("mer1a", 1), escrowIdFor("mer1b", 1));
}

TEST(Tx, OwedIsComputedPerTermAndRoundsDown) {
  Prices p{1'000, 2'048, 1'073'741'824, 10, 7'200};
  EXPECT_EQ(computeOwed(p, Usage{1'500, 0, 0, 0}), 1'500);
  EXPECT_EQ(computeOwed(p, Usage{0, 512, 0, 0}), 1'024);
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 3, 0}), 3);
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 0, 999}), 9);
  // Storage: MiB-seconds priced per GiB-hour. 1 GiB for an hour = 1024 * 3600 MiB-s.
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 0, 0, 1024 * 3600}), 7'200);
  // 512 MiB for 10 s = 5120 MiB-s = 1/720 GiB-h: exactly 10 at 7200; one MiB-s less rounds down.
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 0, 0, 5'120}), 10);
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 0, 0, 5'119}), 9);
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 0, 0, 511}), 0);
  EXPECT_EQ(computeOwed(p, Usage{1'500, 512, 3, 999, 1024 * 3600}), 1'500 + 1'024 + 3 + 9 + 7'200);
  EXPECT_EQ(computeOwed(Prices{INT64_MAX, 0, 0, 0}, Usage{INT64_MAX, 0, 0, 0}), INT64_MAX);
  // The product overflows int64 but not the 128-bit sum; the total saturates.
  EXPECT_EQ(computeOwed(Prices{0, 0, 0, 0, INT64_MAX}, Usage{0, 0, 0, 0, INT64_MAX}), INT64_MAX);
  EXPECT_EQ(computeOwed(Prices{0, 0, 0, 0, 1'000'000}, Usage{0, 0, 0, 0, INT64_MAX / 2}),
            static_cast<Micros>(static_cast<__int128>(INT64_MAX / 2) * 1'000'000 / (1024 * 3600)));
}

TEST(Tx, MaxUsageIsFieldWise) {
  Usage a{5, 1, 9, 0, 100}, b{4, 2, 9, 7, 50};
  EXPECT_EQ(maxUsage(a, b), (Usage{5, 2, 9, 7, 100}));
  EXPECT_EQ(maxUsage(Usage{}, Usage{0, 0, 0, 0, 3}).storageMibSeconds, 3);
}

// Storage came after the first ledgers. Its keys are optional on read and written only when
// non-zero, so JSON from before it parses and everything from before it encodes to its old bytes.
TEST(Tx, StorageFieldsAreOptionalInJsonAndOnlyWrittenWhenSet) {
  const json oldPrices =
      json::parse(R"({"cpuSecond":1,"memGibSecond":2,"egressGib":3,"requests1k":4})");
  auto p = pricesFromJson(oldPrices, "prices");
  ASSERT_TRUE(p.isOk()) << p.status().toString();
  EXPECT_EQ(*p, (Prices{1, 2, 3, 4, 0}));
  EXPECT_EQ(toJson(*p), oldPrices);  // no "storageGibHour": 0
  const json oldUsage =
      json::parse(R"({"cpuMillis":1,"memMibSeconds":2,"egressBytes":3,"requests":4})");
  auto u = usageFromJson(oldUsage, "usage");
  ASSERT_TRUE(u.isOk()) << u.status().toString();
  EXPECT_EQ(*u, (Usage{1, 2, 3, 4, 0}));
  EXPECT_EQ(toJson(*u), oldUsage);

  // Set, they round-trip.
  const Prices withStorage{1, 2, 3, 4, 5};
  EXPECT_EQ(toJson(withStorage)["storageGibHour"], 5);
  EXPECT_EQ(*pricesFromJson(toJson(withStorage), "p"), withStorage);
  const Usage usedStorage{1, 2, 3, 4, 6};
  EXPECT_EQ(toJson(usedStorage)["storageMibSeconds"], 6);
  EXPECT_EQ(*usageFromJson(toJson(usedStorage), "u"), usedStorage);
  // An explicit zero reads as absent.
  json zero = oldPrices;
  zero["storageGibHour"] = 0;
  EXPECT_EQ(*pricesFromJson(zero, "p"), *p);

  // Still strict: wrong type, negative, unknown keys.
  json bad = oldPrices;
  bad["storageGibHour"] = -1;
  EXPECT_NE(pricesFromJson(bad, "body.prices")
                .status()
                .message()
                .find("body.prices.storageGibHour: must not be negative"),
            std::string::npos);
  bad["storageGibHour"] = "1";
  EXPECT_NE(
      pricesFromJson(bad, "p").status().message().find("p.storageGibHour: expected an integer"),
      std::string::npos);
  bad = oldUsage;
  bad["storageMibSeconds"] = 1.5;
  EXPECT_NE(usageFromJson(bad, "u").status().message().find("u.storageMibSeconds"),
            std::string::npos);
  bad = oldUsage;
  bad["storageBytes"] = 1;
  EXPECT_NE(usageFromJson(bad, "u").status().message().find("u.storageBytes: unknown field"),
            std::string::npos);
}

// A wire transaction whose `tx` is exactly `canonical` (an old client's bytes), signed over it.
json wireSignedOver(const crypto::Identity& id, const std::string& canonical) {
  return {{"tx", json::parse(canonical)},
          {"signer", id.publicKey().hex()},
          {"sig", id.sign("mercato-tx-v1\n" + canonical).hex()}};
}

// Transactions signed before storage existed (their canonical text written out here by hand,
// not produced by the current encoder) still decode to the same bytes and verify.
TEST(Tx, TransactionsSignedBeforeStorageStillVerify) {
  auto prov = key(3);
  const std::string nodeKey = prov.publicKey().hex();
  const std::string from = prov.address();
  const std::vector<std::string> oldTxs = {
      R"({"body":{"attributes":{"region":"eu"},"capacity":{"cpu":2000,"memory":4294967296,)"
      R"("storage":0},"gatewayUrl":"https://p:8443","nodeKey":")" +
          nodeKey +
          R"(","prices":{"cpuSecond":1000,"egressGib":3000,"memGibSecond":2000,)"
          R"("requests1k":4000}},"chain":"test-chain","from":")" +
          from + R"(","kind":"provider.register","nonce":1})",
      R"({"body":{"escrow":"esc_0123456789abcdef01234567","usage":{"cpuMillis":10000,)"
      R"("egressBytes":0,"memMibSeconds":1024,"requests":3}},"chain":"test-chain","from":")" +
          from + R"(","kind":"escrow.claim","nonce":2})",
      R"({"body":{"order":"ord_x","price":{"cpuSecond":1,"egressGib":3,"memGibSecond":2,)"
      R"("requests1k":4},"ttlMs":1000},"chain":"test-chain","from":")" +
          from + R"(","kind":"bid.create","nonce":3})",
  };
  for (const auto& canonical : oldTxs) {
    auto d = decodeSignedTx(wireSignedOver(prov, canonical));
    ASSERT_TRUE(d.isOk()) << d.status().toString() << "\n" << canonical;
    EXPECT_EQ(d->signing, "mercato-tx-v1\n" + canonical);
    EXPECT_EQ(d->hash, crypto::hashHex(crypto::blake2b256(d->signing)));
    EXPECT_TRUE(verifySignature(*d).isOk()) << canonical;
    EXPECT_EQ(wireText(*d).find("storageGibHour"), std::string::npos);
  }
}

// `"storageGibHour": 0` added to a signed transaction is the same transaction (same typed value,
// same signing bytes and hash, so the nonce rule refuses it as a replay); any other value is a
// different transaction whose signature fails.
TEST(Tx, AddingStorageKeysDoesNotMakeANewTransaction) {
  auto prov = key(3);
  Harness h;
  SignedTx s =
      signTx(Tx{"c", TxKind::kProviderRegister, prov.address(), 1, h.providerBody()}, prov);
  json wire = toJson(s);
  ASSERT_FALSE(wire["tx"]["body"]["prices"].contains("storageGibHour"));
  json zero = wire;
  zero["tx"]["body"]["prices"]["storageGibHour"] = 0;
  auto d = decodeSignedTx(zero);
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_EQ(d->hash, s.hash);
  EXPECT_EQ(d->signing, s.signing);
  EXPECT_EQ(wireText(*d), wireText(s));  // what the log stores
  EXPECT_TRUE(verifySignature(*d).isOk());
  json five = wire;
  five["tx"]["body"]["prices"]["storageGibHour"] = 5;
  auto changed = decodeSignedTx(five);
  ASSERT_TRUE(changed.isOk());
  EXPECT_NE(changed->hash, s.hash);
  EXPECT_EQ(verifySignature(*changed).code(), Code::kUnauthenticated);

  // A claim likewise.
  SignedTx c = signTx(
      Tx{"c", TxKind::kEscrowClaim, prov.address(), 2, EscrowClaimBody{"esc_1", Usage{1, 2, 3, 4}}},
      prov);
  json cz = toJson(c);
  cz["tx"]["body"]["usage"]["storageMibSeconds"] = 0;
  EXPECT_EQ(decodeSignedTx(cz)->hash, c.hash);
  cz["tx"]["body"]["usage"]["storageMibSeconds"] = 1;
  EXPECT_EQ(verifySignature(*decodeSignedTx(cz)).code(), Code::kUnauthenticated);
}

// Signed with storage set, the field is part of the canonical bytes and round-trips.
TEST(Tx, StoragePricesAndUsageAreSigned) {
  auto prov = key(3);
  Harness h;
  SignedTx s = signTx(Tx{"c", TxKind::kProviderRegister, prov.address(), 1,
                         h.providerBody(Prices{1, 2, 3, 4, 250})},
                      prov);
  EXPECT_NE(s.signing.find(R"("requests1k":4,"storageGibHour":250})"), std::string::npos)
      << s.signing;
  auto d = decodeSignedTx(json::parse(toJson(s).dump()));
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_TRUE(verifySignature(*d).isOk());
  EXPECT_EQ(std::get<ProviderBody>(d->tx.body).prices.storageGibHour, 250);
  json dropped = toJson(s);
  dropped["tx"]["body"]["prices"].erase("storageGibHour");
  EXPECT_EQ(verifySignature(*decodeSignedTx(dropped)).code(), Code::kUnauthenticated);

  SignedTx c = signTx(Tx{"c", TxKind::kEscrowClaim, prov.address(), 2,
                         EscrowClaimBody{"esc_1", Usage{1, 2, 3, 4, 99}}},
                      prov);
  auto dc = decodeSignedTx(json::parse(toJson(c).dump()));
  ASSERT_TRUE(dc.isOk());
  EXPECT_TRUE(verifySignature(*dc).isOk());
  EXPECT_EQ(std::get<EscrowClaimBody>(dc->tx.body).usage.storageMibSeconds, 99);
}

}  // namespace
}  // namespace mercato::ledger::testing
