// End-to-end tests of the OCI spec + shim + runc wrapper with a real runc and a busybox rootfs.
// Label: runc (needs root, runc, busybox-static). Each test uses its own runc root and
// container ids, and removes its containers and cgroups on every path.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/runc/host/log_files.hpp"
#include "runtime/runc/host/metering.hpp"
#include "runtime/runc/host/oci_spec.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/host/shim.hpp"
#include "test_util.hpp"

namespace mercato::runtime::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;

class RuncShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::runcUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << "runc tests: " << why;
    rootfs_ = dir_ / "rootfs";
    testing::buildBusyboxRootfs(rootfs_);
    runc_ = Runc(kDefaultRuncBinary, dir_ / "runc-root");
  }
  void TearDown() override {
    for (const auto& id : ids_) {
      (void)runc_.remove(id, /*force=*/true);
      (void)removeCgroup("/mercato/" + id);
    }
  }

  // Writes a bundle for `args` and returns shim options for it.
  ShimOptions prepare(const std::string& id, std::vector<std::string> args,
                      const std::function<void(ContainerConfig&)>& tweak = nullptr) {
    ids_.push_back(id);
    ContainerConfig c;
    c.id = id;
    c.rootfs = rootfs_;
    c.args = std::move(args);
    if (tweak) tweak(c);
    auto spec = makeOciSpec(c);
    EXPECT_TRUE(spec.isOk()) << spec.status().toString();
    std::string bundle = dir_ / id;
    EXPECT_TRUE(writeBundleConfig(bundle, *spec).isOk());
    ShimOptions o;
    o.shimBinary = MERCATO_SHIM_BINARY;
    o.runcRoot = runc_.root();
    o.id = id;
    o.bundleDir = bundle;
    o.stdoutLog = bundle + "/stdout.log";
    o.stderrLog = bundle + "/stderr.log";
    o.exitFile = bundle + "/exit.json";
    auto filled = withShimDefaults(o);
    EXPECT_TRUE(filled.isOk());
    return *filled;
  }

  // Polls for the exit file (the shim writes it when runc returns).
  Result<ExitInfo> waitExit(const std::string& path, std::chrono::milliseconds limit = 20s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto e = readExitFile(path);
      if (e.isOk() || e.status().code() != Code::kNotFound) return e;
      std::this_thread::sleep_for(20ms);
    }
    return deadlineExceeded("no exit file " + path);
  }

  TempDir dir_;
  std::string rootfs_;
  Runc runc_;
  std::vector<std::string> ids_;
};

TEST_F(RuncShimTest, JobExitCodeDurationAndOutput) {
  std::string id = testing::uniqueName();
  auto o = prepare(id, {"sh", "-c", "echo out-line; echo err-line >&2; sleep 0.3; exit 3"});
  auto started = startContainer(o);
  ASSERT_TRUE(started.isOk()) << started.status().toString();
  EXPECT_GT(started->initPid, 0);
  EXPECT_GT(started->shimPid, 0);
  auto e = waitExit(o.exitFile);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ(e->exitCode, 3);
  EXPECT_EQ(e->signal, 0);
  EXPECT_FALSE(e->oomKilled);
  EXPECT_TRUE(e->error.empty()) << e->error;
  EXPECT_GE(e->finishedAtMs - e->startedAtMs, 300);
  EXPECT_LT(e->finishedAtMs - e->startedAtMs, 10000);
  auto out = tailLines(o.stdoutLog, 10);
  ASSERT_TRUE(out.isOk());
  EXPECT_EQ(*out, std::vector<std::string>{"out-line"});
  auto err = tailLines(o.stderrLog, 10);
  ASSERT_TRUE(err.isOk());
  EXPECT_EQ(*err, std::vector<std::string>{"err-line"});
  // runc run removed the container when it ended.
  EXPECT_EQ(runc_.state(id).status().code(), Code::kNotFound);
}

TEST_F(RuncShimTest, StartFailureCarriesRuncError) {
  std::string id = testing::uniqueName();
  auto o = prepare(id, {"/no/such/binary"});
  auto started = startContainer(o);
  ASSERT_FALSE(started.isOk());
  EXPECT_NE(started.status().message().find("no/such/binary"), std::string::npos)
      << started.status().message();
  auto e = readExitFile(o.exitFile);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_FALSE(e->error.empty());
}

TEST_F(RuncShimTest, LogRotationWithTinyLimit) {
  std::string id = testing::uniqueName();
  auto o =
      prepare(id, {"sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done"});
  o.maxLogBytes = 256;
  o.maxLogFiles = 3;
  ASSERT_TRUE(startContainer(o).isOk());
  auto e = waitExit(o.exitFile);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ(e->exitCode, 0);
  auto files = logFiles(o.stdoutLog);
  EXPECT_EQ(files.size(), 3u);
  for (const auto& f : files) EXPECT_LE(fs::file_size(f), 256u) << f;
  EXPECT_FALSE(fs::exists(o.stdoutLog + ".3"));
  auto lines = tailLines(o.stdoutLog, 5);
  ASSERT_TRUE(lines.isOk());
  EXPECT_EQ(*lines,
            (std::vector<std::string>{"line-195", "line-196", "line-197", "line-198", "line-199"}));
}

TEST_F(RuncShimTest, ShimSurvivesLauncherKill) {
  std::string id = testing::uniqueName();
  auto o = prepare(id, {"sh", "-c", "sleep 1; echo done; exit 7"});
  // The launcher is a forked child that starts the container and is then SIGKILLed.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    close(ready[0]);
    auto s = startContainer(o);
    char c = s.isOk() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ssize_t got = read(ready[0], &c, 1);
  close(ready[0]);
  kill(launcher, SIGKILL);
  waitpid(launcher, nullptr, 0);
  ASSERT_EQ(got, 1);
  ASSERT_EQ(c, 'y');
  auto shimPid = readPidFile(o.shimPidFile);
  ASSERT_TRUE(shimPid.isOk());
  EXPECT_TRUE(processExists(*shimPid));
  auto st = runc_.state(id);
  ASSERT_TRUE(st.isOk()) << st.status().toString();
  EXPECT_EQ(st->status, "running");
  auto e = waitExit(o.exitFile);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ(e->exitCode, 7);
  EXPECT_EQ(testing::readFile(o.stdoutLog), "done\n");
}

TEST_F(RuncShimTest, ExecListKillAndRemove) {
  std::string id = testing::uniqueName();
  auto o = prepare(id, {"sleep", "60"});
  auto started = startContainer(o);
  ASSERT_TRUE(started.isOk()) << started.status().toString();

  auto list = runc_.list();
  ASSERT_TRUE(list.isOk()) << list.status().toString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, id);
  EXPECT_EQ((*list)[0].pid, started->initPid);
  EXPECT_EQ((*list)[0].status, "running");

  ExecOptions ex;
  ex.args = {"sh", "-c", "echo hello $FOO; echo oops >&2; exit 4"};
  ex.env = {"FOO=bar"};
  auto r = runc_.exec(id, ex);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->exitCode, 4);
  EXPECT_EQ(r->stdoutData, "hello bar\n");
  EXPECT_EQ(r->stderrData, "oops\n");

  ex.args = {"id", "-u"};
  ex.env = {};
  ex.user = "65534:65534";
  r = runc_.exec(id, ex);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->stdoutData, "65534\n");

  ExecOptions slow;
  slow.args = {"sleep", "30"};
  slow.timeout = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  r = runc_.exec(id, slow);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_TRUE(r->timedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);

  std::string streamed;
  ExecOptions s;
  s.args = {"sh", "-c", "echo a; echo b"};
  r = runc_.execStreaming(
      id, s, [&](std::string_view c) { streamed.append(c); }, nullptr);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(streamed, "a\nb\n");

  ExecOptions missing;
  missing.args = {"/nope"};
  r = runc_.exec(id, missing);
  EXPECT_FALSE(r.isOk());

  EXPECT_EQ(runc_.exec("mct-missing", ex).status().code(), Code::kNotFound);

  ASSERT_TRUE(runc_.kill(id, SIGKILL).isOk());
  auto e = waitExit(o.exitFile);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ(e->signal, SIGKILL);
  EXPECT_EQ(e->exitCode, 128 + SIGKILL);
  EXPECT_TRUE(runc_.remove(id, true).isOk());  // already gone: idempotent
}

TEST_F(RuncShimTest, MemoryLimitOomKill) {
  std::string id = testing::uniqueName();
  auto o = prepare(id, {"sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"},
                   [](ContainerConfig& c) { c.memoryBytes = 16 << 20; });
  ASSERT_TRUE(startContainer(o).isOk());
  auto e = waitExit(o.exitFile, 60s);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_TRUE(e->oomKilled);
  EXPECT_EQ(testing::readFile(o.stdoutLog).find("survived"), std::string::npos);
}

TEST_F(RuncShimTest, CpuQuotaLimitsUsage) {
  std::string id = testing::uniqueName();
  auto o = prepare(id, {"sh", "-c", "while :; do :; done"},
                   [](ContainerConfig& c) { c.cpuMillicores = 250; });
  ASSERT_TRUE(startContainer(o).isOk());
  auto before = readCgroupStats("/mercato/" + id);
  ASSERT_TRUE(before.isOk()) << before.status().toString();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1s);
  auto after = readCgroupStats("/mercato/" + id);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(after.isOk());
  double cpu = static_cast<double>(after->cpuNanos - before->cpuNanos) / 1e9;
  EXPECT_NEAR(cpu / wall, 0.25, 0.1) << "cpu " << cpu << " s over " << wall << " s";
  EXPECT_GE(after->pids, 1u);
  EXPECT_GT(after->memoryUsageBytes, 0u);
  ASSERT_TRUE(runc_.kill(id, SIGKILL).isOk());
  ASSERT_TRUE(waitExit(o.exitFile).isOk());
}

TEST_F(RuncShimTest, ReadonlyRootfsUserAndEtcFiles) {
  std::string id = testing::uniqueName();
  std::string etc = dir_ / "etc-files";
  ASSERT_TRUE(writeEtcFiles(etc, {.hostname = "web-0",
                                  .hosts = {"10.89.0.5 peer"},
                                  .nameservers = {"10.0.0.53"},
                                  .search = {}})
                  .isOk());
  auto o = prepare(id,
                   {"sh", "-c",
                    "id -u; id -G; cat /etc/hostname; grep peer /etc/hosts; cat /etc/resolv.conf;"
                    " touch /t 2>/dev/null && echo rw || echo ro; touch /tmp/x && echo tmp-ok"},
                   [&](ContainerConfig& c) {
                     c.readonlyRootfs = true;
                     c.user = "app";
                     c.etcDir = etc;
                   });
  ASSERT_TRUE(startContainer(o).isOk());
  auto e = waitExit(o.exitFile);
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->exitCode, 0) << testing::readFile(o.stderrLog);
  EXPECT_EQ(testing::readFile(o.stdoutLog),
            "1000\n1000 1001\nweb-0\n10.89.0.5 peer\nnameserver 10.0.0.53\nro\ntmp-ok\n");
}

}  // namespace
}  // namespace mercato::runtime::host
