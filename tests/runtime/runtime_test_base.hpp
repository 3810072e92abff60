// A gtest fixture for tests of the runc backend on real components: the sample image in a
// loopback docker-registry (shared by the tests of one binary), a fresh data dir and runtime per
// test, and removal of every deployment afterwards. Needs root: tests skip (saying why) without.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.hpp"
#include "runtime/runtime.hpp"
#include "runtime_fixture.hpp"

namespace mercato::runtime::testing_support {

class RuntimeTestBase : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() == 0) env_ = new SampleEnvironment();
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (runc, network namespaces, cgroups)";
    ASSERT_TRUE(env_->ok()) << env_->error();
    dataDir_ = makeTempDir("mct-rt");
    rt_ = makeRuntime();
    ASSERT_NE(rt_, nullptr);
  }
  void TearDown() override {
    if (rt_) {
      auto all = rt_->list();
      if (all.isOk()) {
        for (const auto& d : *all) (void)rt_->remove(d.id);
        // A deployment's bridge and its NAT and filter rules go with it.
        auto host = HostSnapshot::take();
        for (const auto& d : *all)
          EXPECT_FALSE(host.mentions(bridgeOf(dataDir_, d.id)))
              << "deployment " << d.id << " left its bridge " << bridgeOf(dataDir_, d.id);
        // Every bridge the runtime made (it keeps an IPAM dir per bridge) is gone too, also
        // those of deployments the test removed itself.
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dataDir_ + "/cni", ec))
          ADD_FAILURE() << "bridge " << e.path().filename().string() << " left behind";
      }
      rt_.reset();
    }
    std::error_code ec;
    std::filesystem::remove_all(dataDir_, ec);
  }

  // A fixture's own settings for every runtime it makes.
  virtual void configure(RuntimeConfig&) {}

  // The runtime under test; `tweak` may change the config first.
  std::unique_ptr<Runtime> makeRuntime(const std::function<void(RuntimeConfig&)>& tweak = {}) {
    RuntimeConfig c;
    c.dataDir = dataDir_;
    c.clock = &systemClock();
    c.sampleIntervalMs = 200;
    c.restartBackoffMs = 100;
    c.restartBackoffMaxMs = 400;
    c.stopGraceMs = 2000;
    c.subnetPool = uniqueSubnetPool();
    configure(c);
    if (tweak) tweak(c);
    config_ = c;
    auto r = createRuntime(c);
    EXPECT_TRUE(r.isOk()) << r.status().message();
    return r.isOk() ? std::move(*r) : nullptr;
  }

  // One service "web" running the sample image (HTTP on 8080).
  DeploymentSpec web(const std::string& id, int replicas = 1) {
    DeploymentSpec s;
    s.id = id;
    s.owner = "mer1test";
    ServiceSpec svc;
    svc.name = "web";
    svc.image = env_->sampleRef();
    svc.replicas = replicas;
    svc.resources.memoryBytes = 64 << 20;
    svc.env.push_back({"GREETING", "hi", false});
    svc.env.push_back({"API_TOKEN", "s3cret", true});
    s.services.push_back(svc);
    return s;
  }

  InstanceStatus instance(const std::string& dep, const std::string& svc, int ordinal = 0) {
    auto st = rt_->status(dep);
    EXPECT_TRUE(st.isOk()) << st.status().message();
    if (st.isOk())
      for (const auto& s : st->services)
        for (const auto& i : s.instances)
          if (s.name == svc && i.ordinal == ordinal) return i;
    ADD_FAILURE() << "no instance " << dep << "/" << svc << "/" << ordinal;
    return {};
  }

  // Runs `script` under /bin/sh in the first instance of dep/web.
  Result<ExecResult> sh(const std::string& dep, const std::string& script) {
    ExecRequest x;
    x.deployment = dep;
    x.service = "web";
    x.args = {"/bin/sh", "-c", script};
    return rt_->exec(x);
  }

  inline static SampleEnvironment* env_ = nullptr;
  std::string dataDir_;
  RuntimeConfig config_;
  std::unique_ptr<Runtime> rt_;
};

}  // namespace mercato::runtime::testing_support
