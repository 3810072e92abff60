// The provider role in one process on real components, shared by the provider tests: the
// embedded ledger on a FakeClock (started at real time: the gateway checks signature
// timestamps), the runc runtime with the sample image in a loopback docker-registry, and a
// started Provider (facade + gateway). Needs root; the tests skip without it.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "ledger/ledger.hpp"
#include "ledger/tx.hpp"
#include "manifest/manifest.hpp"
#include "net/client.hpp"
#include "provider/provider.hpp"
#include "publisher/bundle.hpp"
#include "publisher/gateway_client.hpp"
#include "publisher/receipt.hpp"
#include "runtime/runtime.hpp"
#include "runtime_fixture.hpp"

namespace mercato::provider::testing_support {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr const char* kManifest = R"(kind: Application
name: hello
components:
  - name: web
    image: IMAGE
    resources: {cpu: 250m, memory: 64Mi}
    expose: {port: 8080}
    scaling: {min: 0, max: 2, targetConcurrency: 10, idleTimeout: 5s}
)";

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (runc, network namespaces, cgroups)";
    crypto::initCrypto();
    if (needsRegistry()) {
      env_ = std::make_unique<runtime::testing_support::SampleEnvironment>();
      ASSERT_TRUE(env_->ok()) << env_->error();
    }
    dir_ = runtime::testing_support::makeTempDir("mct-prov");

    ledger::LedgerConfig lc;
    lc.devMode = true;
    lc.dataDir = dir_ + "/ledger";
    lc.clock = &clock_;
    lc.chainId = "mercato-dev";
    auto l = ledger::createLedger(lc);
    ASSERT_TRUE(l.isOk()) << l.status().message();
    ledger_ = std::move(*l);

    runtime::RuntimeConfig rc;
    rc.dataDir = dir_ + "/runtime";
    rc.clock = &systemClock();
    rc.sampleIntervalMs = 200;
    rc.stopGraceMs = 2000;
    rc.subnetPool = runtime::testing_support::uniqueSubnetPool();
    auto r = runtime::createRuntime(rc);
    ASSERT_TRUE(r.isOk()) << r.status().message();
    runtime_ = std::move(*r);

    node_ = std::make_unique<crypto::Identity>(crypto::Identity::generate());
    publisher_ = std::make_unique<crypto::Identity>(crypto::Identity::generate());
    ProviderOptions po;
    po.config.prices = {1000, 0, 0, 10'000'000};  // 0.001 MER per CPU-s, 0.01 MER per request
    po.config.capacity = {1000, int64_t{1} << 30, int64_t{10} << 30};
    po.config.claimIntervalMs = 3'600'000;  // the test settles by hand
    po.config.graceMs = 60'000;
    po.dataDir = dir_ + "/provider";
    po.identity = node_.get();
    po.ledger = ledger_.get();
    po.runtime = runtime_.get();
    po.clock = &clock_;
    configure(po);
    auto p = Provider::create(po);
    ASSERT_TRUE(p.isOk()) << p.status().message();
    provider_ = std::move(*p);
    ASSERT_TRUE(provider_->start().isOk());
    mint(publisher_->address(), 100 * kMicrosPerToken);
  }

  // Hooks for derived fixtures: whether the sample registry runs (tests of bundled images run
  // without one), and changes to the provider's options before it is created.
  virtual bool needsRegistry() const { return true; }
  virtual void configure(ProviderOptions& options) {}

  void TearDown() override {
    if (provider_) provider_->stop();
    if (runtime_) {
      if (auto all = runtime_->list(); all.isOk())
        for (const auto& d : *all) (void)runtime_->remove(d.id);
    }
    provider_.reset();
    runtime_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  Result<ledger::TxReceipt> send(const crypto::Identity& id, ledger::TxKind kind,
                                 ledger::TxBody body) {
    ASSIGN_OR_RETURN(uint64_t nonce, ledger_->nextNonce(id.address()));
    ledger::Tx tx;
    tx.chainId = "mercato-dev";
    tx.kind = kind;
    tx.from = id.address();
    tx.nonce = nonce;
    tx.body = std::move(body);
    return ledger_->submitAndWait(ledger::signTx(std::move(tx), id));
  }
  void mint(const std::string& to, Micros amount) {
    ASSERT_TRUE(send(*publisher_, ledger::TxKind::kMint, ledger::MintBody{to, amount}).isOk());
  }
  std::string openEscrow(const crypto::Identity& who, Micros deposit,
                         const std::string& provider = "") {
    auto r = send(who, ledger::TxKind::kEscrowOpen,
                  ledger::EscrowOpenBody{provider.empty() ? node_->address() : provider, deposit,
                                         std::nullopt});
    EXPECT_TRUE(r.isOk()) << r.status().message();
    return r.isOk() ? r->result["escrow"].get<std::string>() : "";
  }
  manifest::Manifest app(const std::string& text = kManifest) {
    std::string t = text;
    if (auto at = t.find("IMAGE"); at != std::string::npos) t.replace(at, 5, env_->sampleRef());
    auto m = manifest::parseManifest(t, "app.yaml");
    EXPECT_TRUE(m.isOk()) << m.status().message();
    return *m;
  }
  std::string seal(const std::string& escrow, const crypto::Identity& from,
                   const crypto::PublicKey& to, manifest::Manifest m) {
    bundle::BundleHeader h;
    h.manifest = std::move(m);
    h.escrowId = escrow;
    h.provider = node_->address();
    auto b = bundle::buildSealedBundle(from, to, h);
    EXPECT_TRUE(b.isOk()) << b.status().message();
    return b.isOk() ? *b : "";
  }
  Result<net::HttpResponse> get(const std::string& url) {
    ASSIGN_OR_RETURN(auto c, net::HttpClient::create(provider_->facadeUrl(),
                                                     net::ClientOptions::withTimeout(15'000ms)));
    return c->request("GET", url);
  }
  ledger::Escrow escrow(const std::string& id) { return *ledger_->escrow(id); }
  size_t runningInstances(const std::string& dep) {
    auto st = runtime_->status(dep);
    if (!st.isOk()) return 0;
    size_t n = 0;
    for (const auto& s : st->services)
      for (const auto& i : s.instances) n += i.state == runtime::InstanceState::kRunning;
    return n;
  }

  FakeClock clock_{std::chrono::time_point_cast<TimePoint::duration>(
      std::chrono::system_clock::now())};  // real time: the gateway checks signature timestamps
  std::unique_ptr<runtime::testing_support::SampleEnvironment> env_;
  std::string dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<crypto::Identity> node_, publisher_;
  std::unique_ptr<Provider> provider_;
};

}  // namespace mercato::provider::testing_support
