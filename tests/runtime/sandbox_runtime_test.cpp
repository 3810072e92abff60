// The tenant sandbox of the runc backend as a tenant meets it, from inside a deployed container:
// its own uid range (container root is an unprivileged host uid), a disk of its own size (ENOSPC
// at the limit, the host does not fill), metered storage, no host paths in mountinfo, and
// nothing of it left after removal (user namespace, id-range claim, loop device, mounts).
// Needs root, runc and the CNI plugins: ctest label `runc`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/subprocess.hpp"
#include "runtime/runc/host/userns.hpp"
#include "runtime_test_base.hpp"

namespace mercato::runtime {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;
using testing::Not;
using namespace std::chrono_literals;

class SandboxRuntimeTest : public testing_support::RuntimeTestBase {
 protected:
  void SetUp() override {
    claimsDir_ = testing_support::makeTempDir("mct-ids");
    testing_support::RuntimeTestBase::SetUp();
  }
  void TearDown() override {
    testing_support::RuntimeTestBase::TearDown();
    std::error_code ec;
    fs::remove_all(claimsDir_, ec);
  }
  // Every test's runtime claims its id ranges in its own claims dir, so tests can count claims.
  void configure(RuntimeConfig& c) override { c.sandbox.idRangeClaimsDir = claimsDir_; }

  // The one instance dir of a deployment on the host.
  std::string instanceDir() {
    for (const auto& e : fs::directory_iterator(dataDir_ + "/instances")) return e.path().string();
    return "";
  }

  std::string run(const std::string& dep, const std::string& script) {
    auto r = sh(dep, script);
    EXPECT_TRUE(r.isOk()) << r.status().message();
    return r.isOk() ? r->stdoutText + r->stderrText : std::string();
  }

  std::string claimsDir_;
};

TEST_F(SandboxRuntimeTest, ContainerRootIsAnUnprivilegedHostUidOfItsOwnRange) {
  ASSERT_TRUE(rt_->deploy(web("ids1")).isOk());
  ASSERT_TRUE(rt_->deploy(web("ids2")).isOk());
  ASSERT_TRUE(rt_->waitReady("ids1", "web", 1, 20s).isOk());
  ASSERT_TRUE(rt_->waitReady("ids2", "web", 1, 20s).isOk());

  auto claims = host::listIdRangeClaims(claimsDir_);
  ASSERT_TRUE(claims.isOk());
  ASSERT_EQ(claims->size(), 2u);
  std::map<std::string, uint32_t> base;
  for (const auto& c : *claims) base[c.owner] = c.range.hostBase;
  ASSERT_TRUE(base.count("ids1") && base.count("ids2"));
  EXPECT_NE(base["ids1"], base["ids2"]);
  EXPECT_GE(base["ids1"], host::kIdPoolStart);

  // Inside: uid 0, mapped to the deployment's range (not "0 0 4294967295").
  std::istringstream map(run("ids1", "id -u; cat /proc/self/uid_map /proc/self/gid_map"));
  std::string uid;
  uint32_t inside = 1, outside = 0, count = 0;
  map >> uid;
  EXPECT_EQ(uid, "0");
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(map >> inside >> outside >> count);
    EXPECT_EQ(inside, 0u);
    EXPECT_EQ(outside, base["ids1"]);
    EXPECT_EQ(count, host::kIdRangeSize);
  }

  // A file that container root creates is owned by the range on the host, in the upper layer.
  EXPECT_EQ(run("ids1", "echo data > /made-by-root && stat -c %u:%g /made-by-root"), "0:0\n");
  struct stat st {};
  std::string upper;
  for (const auto& e : fs::directory_iterator(dataDir_ + "/instances")) {
    std::string f = e.path().string() + "/disk/upper/made-by-root";
    if (::stat(f.c_str(), &st) == 0) upper = f;
  }
  ASSERT_FALSE(upper.empty()) << "the file is not in any instance's upper layer";
  EXPECT_EQ(st.st_uid, base["ids1"]);
  EXPECT_EQ(st.st_gid, base["ids1"]);

  // The image's own files appear owned by root inside, although the cache holds them as uid 0.
  EXPECT_EQ(run("ids1", "stat -c %u /bin/busybox"), "0\n");
  // Host files outside the range (the bind-mounted /etc/hosts) appear as the overflow id.
  EXPECT_EQ(run("ids1", "stat -c %u /etc/hosts"), "65534\n");

  // Removal gives the range back, with its user namespace.
  ASSERT_TRUE(rt_->remove("ids1").isOk());
  claims = host::listIdRangeClaims(claimsDir_);
  ASSERT_TRUE(claims.isOk());
  ASSERT_EQ(claims->size(), 1u);
  EXPECT_EQ(claims->front().owner, "ids2");
  EXPECT_FALSE(fs::exists(dataDir_ + "/userns/ids1"));
  EXPECT_TRUE(host::isNamespaceFile(dataDir_ + "/userns/ids2"));
}

TEST_F(SandboxRuntimeTest, WritingPastTheDiskQuotaFailsInsideAndTheHostDoesNotFill) {
  auto spec = web("disk");
  spec.services[0].resources.storageBytes = 32 << 20;
  ASSERT_TRUE(rt_->deploy(spec).isOk());
  ASSERT_TRUE(rt_->waitReady("disk", "web", 1, 20s).isOk());
  std::string dir = instanceDir();
  ASSERT_FALSE(dir.empty());

  // 64 MiB into a 32 MiB layer: ENOSPC inside, and the host's image file stays under the limit.
  auto r = sh("disk", "dd if=/dev/zero of=/fill bs=1M count=64 2>&1; echo rc=$?");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_THAT(r->stdoutText, HasSubstr("No space left on device"));
  EXPECT_THAT(r->stdoutText, Not(HasSubstr("rc=0")));
  struct stat img {};
  ASSERT_EQ(::stat((dir + "/disk.img").c_str(), &img), 0);
  EXPECT_LE(static_cast<int64_t>(img.st_blocks) * 512, int64_t{33} << 20);
  // /tmp is in the same layer.
  EXPECT_THAT(run("disk", "dd if=/dev/zero of=/tmp/more bs=1M count=8 2>&1"),
              HasSubstr("No space left on device"));

  // The instance still works, and the storage it holds is metered.
  EXPECT_EQ(run("disk", "rm /fill /tmp/more; echo ok"), "ok\n");
  EXPECT_EQ(run("disk", "dd if=/dev/zero of=/eight bs=1M count=8 2>/dev/null; sync; echo ok"),
            "ok\n");
  // The runtime samples every 200 ms here (RuntimeTestBase).
  Result<DeploymentStats> stats = rt_->stats("disk");
  for (int i = 0; i < 50; ++i) {
    stats = rt_->stats("disk");
    if (stats.isOk() && stats->total.storageBytes >= (int64_t{8} << 20) &&
        stats->total.storageGiBSeconds > 0)
      break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(stats.isOk());
  EXPECT_GE(stats->total.storageBytes, int64_t{8} << 20);
  EXPECT_GT(stats->total.storageGiBSeconds, 0.0);

  // Removal: no mount, no loop device backed by the image, no file.
  ASSERT_TRUE(rt_->remove("disk").isOk());
  EXPECT_FALSE(fs::exists(dir));
  ProcessSpec losetup;
  losetup.argv = {"losetup", "-a"};
  auto loops = runProcess(losetup);
  ASSERT_TRUE(loops.isOk());
  EXPECT_THAT(loops->out, Not(HasSubstr(dataDir_)));
}

TEST_F(SandboxRuntimeTest, MountinfoAndStatusShowNoHostPaths) {
  ASSERT_TRUE(rt_->deploy(web("paths")).isOk());
  ASSERT_TRUE(rt_->waitReady("paths", "web", 1, 20s).isOk());
  std::string mountinfo = run("paths", "cat /proc/self/mountinfo");
  ASSERT_THAT(mountinfo, HasSubstr(" / "));  // it did read something
  EXPECT_THAT(mountinfo, Not(HasSubstr(dataDir_)));
  EXPECT_THAT(mountinfo, Not(HasSubstr("/tmp/")));
  EXPECT_THAT(mountinfo, Not(HasSubstr("/var/lib")));
  EXPECT_THAT(mountinfo, HasSubstr("lowerdir=lower,upperdir=disk/upper,workdir=disk/work"));
  std::string self = run("paths", "cat /proc/1/cmdline /proc/self/environ | tr '\\0' ' '");
  EXPECT_THAT(self, Not(HasSubstr(dataDir_)));
  // A failed exec: runc's own error (it names the bundle and the data dir) comes back cleaned.
  ExecRequest x;
  x.deployment = "paths";
  x.args = {"/no/such/binary"};
  auto bad = rt_->exec(x);
  std::string shown = bad.isOk() ? bad->stdoutText + bad->stderrText : bad.status().message();
  EXPECT_TRUE(!bad.isOk() || bad->exitCode != 0);
  EXPECT_THAT(shown, Not(HasSubstr(dataDir_)));
  EXPECT_THAT(shown, Not(HasSubstr("--root")));

  // A container that can't start: the status and the events say why without host paths.
  auto broken = web("broken");
  broken.services[0].command = {"/no/such/entrypoint"};
  (void)rt_->deploy(broken);
  std::string message;
  for (int i = 0; i < 100 && message.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    auto st = rt_->status("broken");
    if (st.isOk() && !st->services.empty() && !st->services[0].instances.empty())
      message = st->services[0].instances[0].message;
  }
  EXPECT_THAT(message, HasSubstr("no such file"));
  EXPECT_THAT(message, Not(HasSubstr(dataDir_)));
  auto evs = rt_->events(0, 1000, 0);
  ASSERT_TRUE(evs.isOk());
  for (const auto& e : *evs) EXPECT_THAT(e.message, Not(HasSubstr(dataDir_)));
}

TEST_F(SandboxRuntimeTest, ProcSysIsNotWritable) {
  ASSERT_TRUE(rt_->deploy(web("sysctl")).isOk());
  ASSERT_TRUE(rt_->waitReady("sysctl", "web", 1, 20s).isOk());
  // Through runc's read-only bind and, beneath it, the user namespace: /proc/sys belongs to the
  // host's user namespace, so even a read-write /proc/sys would refuse container root.
  std::string out = run("sysctl",
                        "echo 1 > /proc/sys/kernel/core_pattern 2>&1; echo rc=$?;"
                        "echo x > /proc/sys/kernel/hostname 2>&1; echo rc=$?;"
                        "cat /proc/sys/kernel/core_pattern");
  EXPECT_THAT(out, Not(HasSubstr("rc=0")));
  EXPECT_THAT(out, Not(HasSubstr("\n1\n")));
}

}  // namespace
}  // namespace mercato::runtime
