// The runc backend end to end, on real components: docker-registry on loopback serves the
// sample image (pushed by our registry client), runc runs it under the shim, CNI networks it.
// Needs root, runc and the CNI plugins: ctest label `runc`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/clock.hpp"
#include "net/client.hpp"
#include "runtime/runc/runc_runtime.hpp"
#include "runtime/runtime.hpp"
#include "runtime_fixture.hpp"
#include "runtime_test_base.hpp"

namespace mercato::runtime {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;
using namespace std::chrono_literals;

class RuncRuntimeTest : public testing_support::RuntimeTestBase {
 protected:
  static Result<std::string> get(const std::string& ip, const std::string& path) {
    ASSIGN_OR_RETURN(auto c, net::HttpClient::create("http://" + ip + ":8080",
                                                     net::ClientOptions::withTimeout(5000ms)));
    ASSIGN_OR_RETURN(auto r, c->request("GET", path));
    if (r.status != 200) return internalError("status " + std::to_string(r.status));
    return r.body;
  }
};

TEST_F(RuncRuntimeTest, PullRunAnswerStopAndCleanUp) {
  ASSERT_TRUE(rt_->deploy(web("app1")).isOk());
  ASSERT_TRUE(rt_->waitReady("app1", "web", 1, 20s).isOk());
  auto inst = instance("app1", "web");
  EXPECT_EQ(inst.state, InstanceState::kRunning);
  ASSERT_FALSE(inst.ip.empty());
  ASSERT_EQ(inst.ports.size(), 1u);
  EXPECT_EQ(inst.ports[0].port, 8080);  // from the image's ExposedPorts
  auto body = get(inst.ip, "/");
  ASSERT_TRUE(body.isOk()) << body.status().message();
  EXPECT_THAT(*body, HasSubstr("hello from"));
  auto env = get(inst.ip, "/env");
  ASSERT_TRUE(env.isOk());
  EXPECT_THAT(*env, HasSubstr("GREETING=hi"));
  EXPECT_THAT(*env, HasSubstr("PORT=8080"));  // the image's Env is kept

  auto host = testing_support::HostSnapshot::take();
  ASSERT_TRUE(rt_->remove("app1").isOk());
  auto after = testing_support::HostSnapshot::take();
  EXPECT_THAT(after.leftoversOf(dataDir_), testing::IsEmpty());
  EXPECT_TRUE(host.mentions(testing_support::prefixOf(dataDir_)));  // it was really there
  EXPECT_FALSE(after.mentions(testing_support::prefixOf(dataDir_)));
  EXPECT_EQ(rt_->status("app1").status().code(), Code::kNotFound);
  // Secrets never reach the event log.
  auto evs = rt_->events(0, 1000, 0);
  ASSERT_TRUE(evs.isOk());
  for (const auto& e : *evs) EXPECT_THAT(e.message, testing::Not(HasSubstr("s3cret")));
}

TEST_F(RuncRuntimeTest, ScaleToZeroAndBack) {
  ASSERT_TRUE(rt_->deploy(web("app2", 2)).isOk());
  ASSERT_TRUE(rt_->waitReady("app2", "web", 2, 20s).isOk());
  ASSERT_TRUE(rt_->scale("app2", "web", 0).isOk());
  auto st = rt_->status("app2");
  ASSERT_TRUE(st.isOk());
  EXPECT_EQ(st->services[0].ready, 0);
  EXPECT_TRUE(st->services[0].instances.empty());
  ASSERT_TRUE(rt_->scale("app2", "web", 1).isOk());
  ASSERT_TRUE(rt_->waitReady("app2", "web", 1, 20s).isOk());
  EXPECT_TRUE(get(instance("app2", "web").ip, "/").isOk());
  EXPECT_EQ(rt_->scale("app2", "nope", 1).code(), Code::kNotFound);
}

TEST_F(RuncRuntimeTest, MemoryLimitKillsAndReports) {
  auto spec = web("oom");
  spec.services[0].resources.memoryBytes = 32 << 20;
  spec.services[0].restart = RestartPolicy::kNever;
  ASSERT_TRUE(rt_->deploy(spec).isOk());
  ASSERT_TRUE(rt_->waitReady("oom", "web", 1, 20s).isOk());
  auto ip = instance("oom", "web").ip;
  (void)get(ip, "/alloc?mb=128");  // the kernel kills it mid-request
  InstanceStatus i;
  for (int n = 0; n < 200; ++n) {
    i = instance("oom", "web");
    if (i.state != InstanceState::kRunning) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(i.state, InstanceState::kFailed);
  EXPECT_TRUE(i.oomKilled);
  EXPECT_THAT(i.message, HasSubstr("memory limit"));
  auto evs = rt_->events(0, 1000, 0);
  ASSERT_TRUE(evs.isOk());
  bool sawOom = false;
  for (const auto& e : *evs) sawOom |= e.type == "oom" && e.deployment == "oom";
  EXPECT_TRUE(sawOom);
}

TEST_F(RuncRuntimeTest, CpuQuotaIsEnforcedAndMetered) {
  auto spec = web("cpu");
  spec.services[0].resources.cpuMillis = 250;
  ASSERT_TRUE(rt_->deploy(spec).isOk());
  ASSERT_TRUE(rt_->waitReady("cpu", "web", 1, 20s).isOk());
  auto before = rt_->stats("cpu");
  ASSERT_TRUE(before.isOk());
  auto t0 = std::chrono::steady_clock::now();
  auto r = get(instance("cpu", "web").ip, "/burn?ms=300");  // 300 ms of CPU time
  ASSERT_TRUE(r.isOk()) << r.status().message();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // At a quarter of a core, 0.3 CPU-seconds take at least ~1 s of wall time.
  EXPECT_GT(wall, 0.9);
  auto after = rt_->stats("cpu");
  ASSERT_TRUE(after.isOk());
  double used = after->total.cpuSeconds - before->total.cpuSeconds;
  EXPECT_NEAR(used, 0.3, 0.05);
  EXPECT_GT(after->total.memoryPeakBytes, 0);
  EXPECT_GT(after->total.netTxBytes, 0);  // the reply left the instance
  EXPECT_GT(after->total.netRxBytes, 0);
}

TEST_F(RuncRuntimeTest, DeploymentsAreIsolatedFromEachOther) {
  ASSERT_TRUE(rt_->deploy(web("iso-a", 2)).isOk());
  ASSERT_TRUE(rt_->deploy(web("iso-b")).isOk());
  ASSERT_TRUE(rt_->waitReady("iso-a", "web", 2, 20s).isOk());
  ASSERT_TRUE(rt_->waitReady("iso-b", "web", 1, 20s).isOk());
  auto a1 = instance("iso-a", "web", 1), b0 = instance("iso-b", "web");
  auto wget = [&](const std::string& dep, const std::string& ip) {
    ExecRequest x;
    x.deployment = dep;
    x.instance = dep + ".web.0";
    // busybox's wget crashes on this host; nc speaks enough HTTP/1.0.
    x.args = {"/bin/sh", "-c",
              "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 " + ip + " 8080"};
    return rt_->exec(x);
  };
  auto same = wget("iso-a", a1.ip);
  ASSERT_TRUE(same.isOk()) << same.status().message();
  EXPECT_EQ(same->exitCode, 0) << same->stderrText;
  EXPECT_THAT(same->stdoutText, HasSubstr("hello from"));
  auto cross = wget("iso-a", b0.ip);
  ASSERT_TRUE(cross.isOk()) << cross.status().message();
  EXPECT_NE(cross->exitCode, 0) << "iso-a reached iso-b: " << cross->stdoutText;
  // The host (where the facade runs) reaches both.
  EXPECT_TRUE(get(b0.ip, "/").isOk());
  EXPECT_TRUE(get(a1.ip, "/").isOk());
}

TEST_F(RuncRuntimeTest, LogsTailFollowAndExec) {
  ASSERT_TRUE(rt_->deploy(web("logs")).isOk());
  ASSERT_TRUE(rt_->waitReady("logs", "web", 1, 20s).isOk());
  auto ip = instance("logs", "web").ip;
  ASSERT_TRUE(get(ip, "/?first").isOk());
  std::this_thread::sleep_for(100ms);
  std::vector<LogLine> lines;
  LogOptions lo;
  lo.tail = 50;
  ASSERT_TRUE(rt_->logs("logs", lo,
                        [&](const LogLine& l) {
                          lines.push_back(l);
                          return true;
                        })
                  .isOk());
  bool sawFirst = false;
  for (const auto& l : lines) sawFirst |= l.text.find("/?first") != std::string::npos;
  EXPECT_TRUE(sawFirst) << "lines: " << lines.size();

  // Follow: a request made after the follow began shows up.
  std::atomic<bool> sawSecond{false};
  std::thread follower([&] {
    LogOptions f;
    f.tail = 0;
    f.follow = true;
    f.stderrStream = false;
    (void)rt_->logs("logs", f, [&](const LogLine& l) {
      if (l.text.find("/?second") != std::string::npos) sawSecond = true;
      return !sawSecond;
    });
  });
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(get(ip, "/?second").isOk());
  for (int i = 0; i < 100 && !sawSecond; ++i) std::this_thread::sleep_for(50ms);
  if (!sawSecond) {
    ASSERT_TRUE(get(ip, "/?second").isOk());  // unblock the follower
  }
  follower.join();
  EXPECT_TRUE(sawSecond);

  ExecRequest x;
  x.deployment = "logs";
  x.service = "web";
  x.args = {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"};
  auto r = rt_->exec(x);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->exitCode, 7);
  EXPECT_EQ(r->stdoutText, "out\n");
  EXPECT_EQ(r->stderrText, "err\n");
}

TEST_F(RuncRuntimeTest, JobReportsExitCodeAndDuration) {
  DeploymentSpec s;
  s.id = "job1";
  ServiceSpec j;
  j.name = "task";
  j.kind = WorkloadKind::kJob;
  j.image = env_->sampleRef();
  j.command = {"/bin/sh", "-c", "sleep 0.3; echo done; exit 42"};
  s.services.push_back(j);
  ASSERT_TRUE(rt_->deploy(s).isOk());
  ASSERT_TRUE(rt_->waitReady("job1", "task", 0, 20s).isOk());
  auto i = instance("job1", "task");
  EXPECT_EQ(i.state, InstanceState::kFailed);
  ASSERT_TRUE(i.exitCode.has_value());
  EXPECT_EQ(*i.exitCode, 42);
  EXPECT_GE(i.finishedAtMs - i.startedAtMs, 300);
  EXPECT_EQ(i.restarts, 0);  // jobs are not restarted by default
  std::vector<std::string> out;
  LogOptions lo;
  ASSERT_TRUE(rt_->logs("job1", lo,
                        [&](const LogLine& l) {
                          out.push_back(l.text);
                          return true;
                        })
                  .isOk());
  EXPECT_THAT(out, testing::Contains("done"));
}

TEST_F(RuncRuntimeTest, ServicesRestartWithBackoff) {
  auto spec = web("crashy");
  ASSERT_TRUE(rt_->deploy(spec).isOk());
  ASSERT_TRUE(rt_->waitReady("crashy", "web", 1, 20s).isOk());
  auto first = instance("crashy", "web");
  (void)get(first.ip, "/exit?code=3");
  // It comes back (restart policy always), with a restart counted.
  InstanceStatus i;
  for (int n = 0; n < 200; ++n) {
    i = instance("crashy", "web");
    if (i.restarts >= 1 && i.ready) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(i.restarts, 1);
  EXPECT_TRUE(i.ready);
  EXPECT_TRUE(get(i.ip, "/").isOk());
  auto evs = rt_->events(0, 1000, 0);
  ASSERT_TRUE(evs.isOk());
  bool sawRestart = false;
  for (const auto& e : *evs)
    if (e.type == "restarting" && e.deployment == "crashy") {
      sawRestart = true;
      EXPECT_THAT(e.message, HasSubstr("exit code 3"));
    }
  EXPECT_TRUE(sawRestart);
}

TEST_F(RuncRuntimeTest, BadInputIsRejectedAndLeavesNothing) {
  auto before = testing_support::HostSnapshot::take();
  auto missing = web("bad1");
  missing.services[0].image = env_->registryHost() + "/mercato/does-not-exist:v1";
  Status s = rt_->deploy(missing);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("does-not-exist"));

  auto huge = web("bad2");
  huge.services[0].resources.cpuMillis = 1'000'000;
  s = rt_->deploy(huge);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("resources.cpu"));

  auto tiny = web("bad3");
  tiny.services[0].resources.memoryBytes = 1024;
  s = rt_->deploy(tiny);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("resources.memory"));

  auto user = web("bad4");
  user.services[0].user = "nosuchuser";
  s = rt_->deploy(user);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("nosuchuser"));

  auto badId = web("Bad_Id");
  EXPECT_EQ(rt_->deploy(badId).code(), Code::kInvalidArgument);

  // Issue 12, finding 9: an image string that looks like the old "oci-layout:<path>" prefix is a
  // registry reference like any other. The runtime never opens the path, so an existing
  // directory and a missing one give the same answer, and neither is imported.
  std::string existing, missingPath;
  for (const auto& [id, path] : {std::pair{"bad5", std::string("/etc")},
                                 std::pair{"bad6", std::string("/no/such/layout")}}) {
    auto layout = web(id);
    layout.services[0].image = "oci-layout:" + path;
    s = rt_->deploy(layout);
    EXPECT_FALSE(s.isOk());
    EXPECT_THAT(s.message(), testing::Not(HasSubstr("oci-layout file"))) << s.message();
    EXPECT_THAT(s.message(), testing::Not(HasSubstr("No such file"))) << s.message();
    std::string shape = s.message();
    if (auto at = shape.find(path); at != std::string::npos) shape.replace(at, path.size(), "PATH");
    (path == "/etc" ? existing : missingPath) = std::string(codeName(s.code())) + ": " + shape;
  }
  EXPECT_EQ(existing, missingPath) << "the answer tells whether a host path exists";

  auto list = rt_->list();
  ASSERT_TRUE(list.isOk());
  EXPECT_TRUE(list->empty());
  auto after = testing_support::HostSnapshot::take();
  EXPECT_FALSE(after.mentions(testing_support::prefixOf(dataDir_)));
  EXPECT_THAT(after.leftoversOf(dataDir_), testing::IsEmpty());

  ASSERT_TRUE(rt_->deploy(web("good")).isOk());  // and it keeps working
  EXPECT_TRUE(rt_->waitReady("good", "web", 1, 20s).isOk());
}

}  // namespace
}  // namespace mercato::runtime
