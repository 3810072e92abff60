// Signed deployment receipts (publisher/receipt.hpp).
#include "publisher/receipt.hpp"

#include <gtest/gtest.h>

#include "crypto/keys.hpp"

namespace mercato::publisher {
namespace {

Receipt sample() {
  Receipt r;
  r.deploymentId = "d-7f3a";
  r.escrowId = "e-12";
  r.provider = "mer1provider";
  r.publisher = "mer1publisher";
  r.urls = {"http://d-7f3a.apps.local:8080/", "http://127.0.0.1:8080/d/d-7f3a/"};
  r.terms = {10, 20, 30, 40};
  r.createdAtMs = 1'700'000'000'000;
  return r;
}

TEST(ReceiptTest, SignVerifyAndJsonRoundTrip) {
  crypto::initCrypto();
  auto node = crypto::Identity::generate();
  Receipt r = sample();
  signReceipt(r, node);
  EXPECT_EQ(r.signature.size(), 128u);
  EXPECT_TRUE(verifyReceipt(r, node.publicKey()).isOk());
  auto back = receiptFromJson(nlohmann::json::parse(toJson(r).dump()));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(*back, r);
  EXPECT_TRUE(verifyReceipt(*back, node.publicKey()).isOk());
}

TEST(ReceiptTest, SigningBytesAreCanonicalJsonWithoutTheSignature) {
  Receipt r = sample();
  r.urls = {"u"};
  EXPECT_EQ(receiptSigningBytes(r),
            "{\"createdAtMs\":1700000000000,\"deploymentId\":\"d-7f3a\",\"escrowId\":\"e-12\","
            "\"provider\":\"mer1provider\",\"publisher\":\"mer1publisher\",\"terms\":{"
            "\"cpuSecond\":10,\"egressGib\":30,\"memGibSecond\":20,\"requests1k\":40},"
            "\"urls\":[\"u\"]}");
}

TEST(ReceiptTest, AnyChangeOrAnotherKeyFails) {
  crypto::initCrypto();
  auto node = crypto::Identity::generate();
  auto other = crypto::Identity::generate();
  Receipt r = sample();
  signReceipt(r, node);
  EXPECT_EQ(verifyReceipt(r, other.publicKey()).code(), Code::kUnauthenticated);
  std::vector<std::function<void(Receipt&)>> edits = {
      [](Receipt& x) { x.deploymentId += "x"; }, [](Receipt& x) { x.escrowId += "x"; },
      [](Receipt& x) { x.provider += "x"; },     [](Receipt& x) { x.publisher += "x"; },
      [](Receipt& x) { x.urls.pop_back(); },     [](Receipt& x) { x.terms.cpuSecond = 1; },
      [](Receipt& x) { x.createdAtMs++; },       [](Receipt& x) { x.signature[0] ^= 1; },
      [](Receipt& x) { x.signature.clear(); },   [](Receipt& x) { x.signature = "zz"; }};
  for (size_t i = 0; i < edits.size(); ++i) {
    Receipt t = r;
    edits[i](t);
    Status s = verifyReceipt(t, node.publicKey());
    EXPECT_EQ(s.code(), Code::kUnauthenticated) << "edit " << i;
  }
}

TEST(ReceiptTest, StrictParserNamesTheField) {
  nlohmann::json j = toJson(sample());
  j["extra"] = 1;
  auto r = receiptFromJson(j);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("extra"), std::string::npos);
  j = toJson(sample());
  j["terms"]["cpuSecond"] = "ten";
  r = receiptFromJson(j);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("receipt.terms.cpuSecond"), std::string::npos);
  j = toJson(sample());
  j["urls"] = {1};
  EXPECT_NE(receiptFromJson(j).status().message().find("receipt.urls[0]"), std::string::npos);
  j = toJson(sample());
  j.erase("escrowId");
  EXPECT_NE(receiptFromJson(j).status().message().find("escrowId"), std::string::npos);
  EXPECT_FALSE(receiptFromJson(nlohmann::json::array()).isOk());
}

}  // namespace
}  // namespace mercato::publisher
