// GatewayClient against a TEST DOUBLE gateway built on net::HttpServer.
//
// The real provider gateway (src/provider/) is being built concurrently; this double implements
// just the wire contract of docs/protocols.md ("Gateway API") with hooks to inject faults. The
// lead's end-to-end test runs the client against the real gateway. Every request the double
// receives must carry a valid Mercato-Sig by the publisher; it records the verdicts.
#include "publisher/gateway_client.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <mutex>

#include "common/strings.hpp"
#include "crypto/address.hpp"
#include "crypto/envelope.hpp"
#include "net/server.hpp"
#include "publisher/gateway_auth.hpp"

namespace mercato::publisher {
namespace {

using net::HttpRequest;
using net::HttpResponse;
using nlohmann::json;

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string sha256Hex(std::string_view d) {
  std::array<uint8_t, crypto_hash_sha256_BYTES> h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(d.data()), d.size());
  return toHex(std::span<const uint8_t>(h));
}

class FakeGateway {
 public:
  explicit FakeGateway(const crypto::Identity& node, std::string publisherAddress)
      : node_(node.clone()), publisher_(std::move(publisherAddress)) {}

  // --- fault and behaviour knobs (set before the request) ---
  std::atomic<int> failPutNumber{-1};      // the Nth PUT (0-based) stores half then answers 500
  std::atomic<int> conflictPutNumber{-1};  // the Nth PUT answers 409 without storing
  std::atomic<int> alwaysFailPuts{0};
  std::atomic<bool> signReceiptsWithOtherKey{false};
  std::string escrowInReceipt = "escrow-1";

  // --- what happened ---
  std::mutex mu;
  std::vector<std::string> authFailures;
  int authorized = 0;
  int puts = 0;
  std::string smallBody, uploaded;
  std::string uploadSha;
  uint64_t uploadSize = 0;

  void start() {
    net::Router r;
    auto guard = [this](auto handler) {
      return [this, handler](const HttpRequest& req) -> HttpResponse {
        auto k = verifyRequestSignature(req.header("Authorization"), req.method, req.target,
                                        req.body, wallMs());
        std::lock_guard l(mu);
        if (!k.isOk()) {
          authFailures.push_back(req.method + " " + req.target + ": " + k.status().message());
          return HttpResponse::error(k.status());
        }
        if (crypto::addressFromPublicKey(*k) != publisher_) {
          authFailures.push_back(req.target + ": not the publisher");
          return HttpResponse::error(permissionDenied("not yours"));
        }
        ++authorized;
        return handler(req);
      };
    };
    r.add("POST", "/gateway/v1/deployments", guard([this](const HttpRequest& req) {
            smallBody = req.body;
            return receiptFor(req.body);
          }));
    r.add(
        "POST", "/gateway/v1/uploads", guard([this](const HttpRequest& req) {
          auto j = json::parse(req.body);
          uploadSize = j["size"];
          uploadSha = j["sha256"];
          uploaded.clear();
          return HttpResponse::json(201, {{"uploadId", "up-1"}, {"offset", 0}, {"maxChunk", 1000}});
        }));
    r.add("PUT", "/gateway/v1/uploads/{id}", guard([this](const HttpRequest& req) {
            const int n = puts++;
            uint64_t off = std::stoull(*req.queryParam("offset"));
            if (alwaysFailPuts) return HttpResponse::error(unavailable("disk full"));
            if (n == conflictPutNumber)
              return HttpResponse::json(409, {{"offset", uploaded.size()}});
            if (off != uploaded.size())
              return HttpResponse::json(409, {{"offset", uploaded.size()}});
            if (n == failPutNumber) {
              uploaded += req.body.substr(0, req.body.size() / 2);
              return HttpResponse::error(internalError("connection to disk lost"));
            }
            uploaded += req.body;
            return HttpResponse::json(200, {{"offset", uploaded.size()}});
          }));
    r.add("GET", "/gateway/v1/uploads/{id}", guard([this](const HttpRequest&) {
            return HttpResponse::json(200, {{"offset", uploaded.size()}, {"size", uploadSize}});
          }));
    r.add("POST", "/gateway/v1/uploads/{id}/deploy", guard([this](const HttpRequest&) {
            if (uploaded.size() != uploadSize || sha256Hex(uploaded) != uploadSha)
              return HttpResponse::error(failedPrecondition("upload incomplete or sha mismatch"));
            return receiptFor(uploaded);
          }));
    r.add("GET", "/gateway/v1/deployments/{id}", guard([](const HttpRequest& req) {
            return HttpResponse::json(200, {{"id", req.params.at("id")}, {"state", "running"}});
          }));
    r.add("POST", "/gateway/v1/deployments/{id}/exec", guard([](const HttpRequest& req) {
            auto j = json::parse(req.body);
            return HttpResponse::json(200, {{"exitCode", 3},
                                            {"stdout", j["service"].get<std::string>() + ":" +
                                                           j["args"][0].get<std::string>()},
                                            {"stderr", ""}});
          }));
    r.addAsync("GET", "/gateway/v1/deployments/{id}/logs",
               [this](HttpRequest req, std::shared_ptr<net::ResponseWriter> w) {
                 auto k = verifyRequestSignature(req.header("Authorization"), req.method,
                                                 req.target, req.body, wallMs());
                 if (!k.isOk()) return w->send(HttpResponse::error(k.status()));
                 w->beginStream(200, {{"Content-Type", "application/x-ndjson"}});
                 // Lines split across chunks, a heartbeat and a junk line on the way.
                 w->writeChunk("{\"instance\":\"web-0\",\"stream\":\"stdout\",\"text\":\"he");
                 w->writeChunk("llo\"}\n\n");
                 w->writeChunk("not json\n{\"instance\":\"web-0\",\"stream\":\"stderr\",");
                 w->writeChunk("\"text\":\"" + req.query["service"] + "\"}\n");
                 w->end();
               });
    auto s = net::HttpServer::create({}, std::move(r));
    ASSERT_TRUE(s.isOk()) << s.status().toString();
    server_ = std::move(s).value();
    server_->start();
  }
  std::string url() const { return server_->url(); }
  void stop() { server_->stop(); }

 private:
  HttpResponse receiptFor(const std::string& sealed) {
    // The double checks that the bytes are the sealed bundle the publisher sent us.
    auto opened = crypto::openEnvelope(node_, sealed);
    if (!opened.isOk()) return HttpResponse::error(opened.status());
    Receipt r;
    r.deploymentId = "d-1";
    r.escrowId = escrowInReceipt;
    r.provider = node_.address();
    r.publisher = publisher_;
    r.urls = {"http://d-1.apps.test/"};
    r.terms = {1, 2, 3, 4};
    r.createdAtMs = 42;
    if (signReceiptsWithOtherKey) {
      signReceipt(r, crypto::Identity::generate());
    } else {
      signReceipt(r, node_);
    }
    return HttpResponse::json(201, toJson(r));
  }

  crypto::Identity node_;
  std::string publisher_;
  std::unique_ptr<net::HttpServer> server_;
};

class GatewayClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    crypto::initCrypto();
    gw_.start();
  }
  void TearDown() override {
    gw_.stop();
    EXPECT_TRUE(gw_.authFailures.empty()) << gw_.authFailures.front();
  }
  std::unique_ptr<GatewayClient> client(GatewayClientOptions o = {}) {
    o.retryBackoff = std::chrono::milliseconds(0);
    auto c = GatewayClient::create(gw_.url() + "/", node_.publicKey(), publisher_, o);
    EXPECT_TRUE(c.isOk()) << c.status().toString();
    return std::move(c).value();
  }
  std::string sealed(size_t plainBytes) {
    std::string plain(plainBytes, '\0');
    randombytes_buf(plain.data(), plain.size());
    return crypto::sealEnvelope(publisher_, node_.publicKey(), plain).value();
  }
  GatewayClientOptions chunked() {
    GatewayClientOptions o;
    o.smallBundleLimit = 4096;
    o.chunkBytes = 4096;  // the double's maxChunk (1000) wins
    return o;
  }

  crypto::Identity node_ = crypto::Identity::generate();
  crypto::Identity publisher_ = crypto::Identity::generate();
  FakeGateway gw_{node_, publisher_.address()};
  DeployExpectation expect_{"escrow-1", node_.address()};
};

TEST_F(GatewayClientTest, SmallBundleIsPostedOnceAndTheReceiptVerified) {
  auto c = client();
  std::string bundle = sealed(1000);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  auto r = c->deploy(bundle, expect_, [&](uint64_t d, uint64_t t) { progress.emplace_back(d, t); });
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->deploymentId, "d-1");
  EXPECT_EQ(r->publisher, publisher_.address());
  EXPECT_EQ(gw_.smallBody, bundle);
  EXPECT_EQ(gw_.puts, 0);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, bundle.size());
  EXPECT_EQ(progress.back().second, bundle.size());
  EXPECT_EQ(gw_.authorized, 1);
}

TEST_F(GatewayClientTest, LargeBundleIsUploadedInChunks) {
  auto c = client(chunked());
  std::string bundle = sealed(9000);
  uint64_t last = 0;
  auto r = c->deploy(bundle, expect_, [&](uint64_t d, uint64_t) {
    EXPECT_GE(d, last);
    last = d;
  });
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(gw_.uploaded, bundle);
  EXPECT_EQ(gw_.puts, static_cast<int>((bundle.size() + 999) / 1000));
  EXPECT_EQ(last, bundle.size());
}

TEST_F(GatewayClientTest, UploadResumesAfterAFailedChunkAndAConflict) {
  gw_.failPutNumber = 2;      // half of chunk 2 lands, then a 500
  gw_.conflictPutNumber = 5;  // a spurious 409
  auto c = client(chunked());
  std::string bundle = sealed(9000);
  auto r = c->deploy(bundle, expect_);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(gw_.uploaded, bundle);  // resumed mid-chunk, no byte twice or lost
  EXPECT_GT(gw_.puts, static_cast<int>((bundle.size() + 999) / 1000));
}

TEST_F(GatewayClientTest, UploadGivesUpAfterTheRetryBudget) {
  gw_.alwaysFailPuts = 1;
  GatewayClientOptions o = chunked();
  o.maxChunkRetries = 3;
  auto c = client(o);
  auto r = c->deploy(sealed(9000), expect_);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("disk full"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("byte 0 of"), std::string::npos) << r.status().message();
  EXPECT_EQ(gw_.puts, 4);
}

TEST_F(GatewayClientTest, ReceiptSignedByAnotherKeyIsRejected) {
  gw_.signReceiptsWithOtherKey = true;
  auto c = client();
  auto r = c->deploy(sealed(100), expect_);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_NE(r.status().message().find("does not verify"), std::string::npos);
}

TEST_F(GatewayClientTest, ReceiptForAnotherEscrowIsRejected) {
  gw_.escrowInReceipt = "escrow-other";
  auto c = client();
  auto r = c->deploy(sealed(100), expect_);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("escrow-other"), std::string::npos);
}

TEST_F(GatewayClientTest, GatewayRejectionComesBackWithItsReason) {
  auto c = client();
  // Sealed to another key: the double cannot open it.
  auto other = crypto::Identity::generate();
  std::string bundle = crypto::sealEnvelope(publisher_, other.publicKey(), "x").value();
  auto r = c->deploy(bundle, expect_);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("POST /gateway/v1/deployments"), std::string::npos);
}

TEST_F(GatewayClientTest, DeploymentApiCallsAreSigned) {
  auto c = client();
  auto st = c->status("d-1");
  ASSERT_TRUE(st.isOk()) << st.status().toString();
  EXPECT_EQ((*st)["state"], "running");
  auto x = c->exec("d-1", "web", {"ls", "-l"});
  ASSERT_TRUE(x.isOk()) << x.status().toString();
  EXPECT_EQ(x->exitCode, 3);
  EXPECT_EQ(x->stdoutText, "web:ls");
  EXPECT_EQ(gw_.authorized, 2);
}

TEST_F(GatewayClientTest, LogsStreamAsLines) {
  auto c = client();
  std::vector<LogLine> lines;
  Status s = c->logs("d-1", {.tail = 10, .follow = true, .service = "web"}, [&](const LogLine& l) {
    lines.push_back(l);
    return true;
  });
  ASSERT_TRUE(s.isOk()) << s.toString();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "hello");
  EXPECT_EQ(lines[1].stream, "stderr");
  EXPECT_EQ(lines[1].text, "web");
}

TEST_F(GatewayClientTest, BadUrlIsAnError) {
  auto c = GatewayClient::create("ftp://x", node_.publicKey(), publisher_);
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mercato::publisher
