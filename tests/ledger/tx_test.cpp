// Transactions: canonical encoding, signing and strict decoding of untrusted wire JSON.
#include <gtest/gtest.h>

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
  Prices p{1'000, 2'048, 1'073'741'824, 10};
  EXPECT_EQ(computeOwed(p, Usage{1'500, 0, 0, 0}), 1'500);
  EXPECT_EQ(computeOwed(p, Usage{0, 512, 0, 0}), 1'024);
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 3, 0}), 3);
  EXPECT_EQ(computeOwed(p, Usage{0, 0, 0, 999}), 9);
  EXPECT_EQ(computeOwed(Prices{INT64_MAX, 0, 0, 0}, Usage{INT64_MAX, 0, 0, 0}), INT64_MAX);
}

}  // namespace
}  // namespace mercato::ledger::testing
