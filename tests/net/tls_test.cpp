#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

#include "crypto/keys.hpp"
#include "net/client.hpp"
#include "net/server.hpp"
#include "net/tls.hpp"
#include "test_util.hpp"

namespace mercato::net {
namespace {

using namespace std::chrono_literals;
using testing::startServer;

struct TlsFixture : ::testing::Test {
  void SetUp() override { crypto::initCrypto(); }
};

using TlsTest = TlsFixture;

TEST_F(TlsTest, CertificateCarriesTheIdentityKey) {
  auto id = crypto::Identity::generate();
  auto bundle = makeIdentityCertificate(id, "node-1", {"127.0.0.1", "::1", "node1.example"}, 30);
  ASSERT_TRUE(bundle.isOk()) << bundle.status().toString();
  EXPECT_NE(bundle->certificatePem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(bundle->privateKeyPem.find("BEGIN PRIVATE KEY"), std::string::npos);
  auto key = certificatePublicKey(bundle->certificatePem);
  ASSERT_TRUE(key.isOk()) << key.status().toString();
  EXPECT_EQ(*key, id.publicKey());

  // Inspect the certificate: subject, SAN kinds, validity window.
  BIO* bio = BIO_new_mem_buf(bundle->certificatePem.data(),
                             static_cast<int>(bundle->certificatePem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(cert, nullptr);
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "node-1");
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  int ips = 0, dns = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_IPADD) ++ips;
    if (gn->type == GEN_DNS) ++dns;
  }
  GENERAL_NAMES_free(names);
  EXPECT_EQ(ips, 2);
  EXPECT_EQ(dns, 1);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert)), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert)), 0);
  EXPECT_EQ(X509_verify(cert, X509_get0_pubkey(cert)), 1);  // self-signed
  X509_free(cert);
}

TEST_F(TlsTest, DeterministicKeyFromSeed) {
  std::array<uint8_t, 32> seed{};
  seed[0] = 7;
  auto id = crypto::Identity::fromSeed(seed);
  ASSERT_TRUE(id.isOk());
  auto a = makeIdentityCertificate(*id, "n", {});
  auto b = makeIdentityCertificate(*id, "n", {});
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_NE(a->certificatePem, b->certificatePem);  // random serials
  EXPECT_EQ(*certificatePublicKey(a->certificatePem), id->publicKey());
  EXPECT_EQ(*certificatePublicKey(b->certificatePem), id->publicKey());
}

TEST_F(TlsTest, CertificatePublicKeyRejectsGarbage) {
  auto r = certificatePublicKey("not a certificate");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

Router helloRouter() {
  Router router;
  router.add("GET", "/hello", [](const HttpRequest&) {
    return HttpResponse::json(200, {{"hello", "tls"}});
  });
  return router;
}

TEST_F(TlsTest, PinnedClientTalksToTlsServer) {
  auto id = crypto::Identity::generate();
  auto bundle = makeIdentityCertificate(id, "node", {"127.0.0.1"});
  ASSERT_TRUE(bundle.isOk());
  ServerOptions options;
  options.tls = TlsOptions{bundle->certificatePem, bundle->privateKeyPem};
  auto server = startServer(helloRouter(), options);
  ASSERT_TRUE(server);
  EXPECT_EQ(server->url().substr(0, 8), "https://");
  auto client = HttpClient::create(server->url(), testing::pinned(id.publicKey()));
  ASSERT_TRUE(client.isOk()) << client.status().toString();
  for (int i = 0; i < 3; ++i) {  // keep-alive over TLS
    auto r = (*client)->getJson("/hello");
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_EQ((*r)["hello"], "tls");
  }
  // A plain-HTTP client speaking to the TLS port fails cleanly, and the server survives.
  auto plain = HttpClient::create("http://127.0.0.1:" + std::to_string(server->port()),
                                  testing::withTimeout(2s));
  EXPECT_FALSE((*plain)->request("GET", "/hello").isOk() &&
               (*plain)->request("GET", "/hello")->status == 200);
  auto again = (*client)->getJson("/hello");
  EXPECT_TRUE(again.isOk()) << again.status().toString();
}

TEST_F(TlsTest, WrongPinnedKeyIsUnauthenticated) {
  auto id = crypto::Identity::generate();
  auto other = crypto::Identity::generate();
  auto bundle = makeIdentityCertificate(id, "node", {"127.0.0.1"});
  ASSERT_TRUE(bundle.isOk());
  ServerOptions options;
  options.tls = TlsOptions{bundle->certificatePem, bundle->privateKeyPem};
  auto server = startServer(helloRouter(), options);
  ASSERT_TRUE(server);
  auto client = HttpClient::create(server->url(), testing::pinned(other.publicKey()));
  ASSERT_TRUE(client.isOk());
  auto r = (*client)->getJson("/hello");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_NE(r.status().message().find("does not match the pinned node key"), std::string::npos);
}

TEST_F(TlsTest, ServerRejectsMismatchedKeyPair) {
  auto a = crypto::Identity::generate();
  auto b = crypto::Identity::generate();
  auto certA = makeIdentityCertificate(a, "a", {});
  auto certB = makeIdentityCertificate(b, "b", {});
  ASSERT_TRUE(certA.isOk() && certB.isOk());
  ServerOptions options;
  options.tls = TlsOptions{certA->certificatePem, certB->privateKeyPem};
  auto server = HttpServer::create(options, Router{});
  ASSERT_FALSE(server.isOk());
  EXPECT_EQ(server.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mercato::net
