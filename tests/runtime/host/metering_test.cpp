// cgroup and interface counter readers against fake v1 and v2 trees in a temp dir.
#include "runtime/runc/host/metering.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace mercato::runtime::host {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::writeFile;

TEST(Metering, ReadsV1Hierarchies) {
  TempDir root;
  std::string cg = "/mercato/web-0";
  writeFile(root / "cpuacct/mercato/web-0/cpuacct.usage", "2500000000\n");
  writeFile(root / "memory/mercato/web-0/memory.usage_in_bytes", "10485760\n");
  writeFile(root / "memory/mercato/web-0/memory.max_usage_in_bytes", "20971520\n");
  writeFile(root / "memory/mercato/web-0/memory.stat",
            "cache 4096\nrss 100\ntotal_inactive_file 1048576\n");
  writeFile(root / "memory/mercato/web-0/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  writeFile(root / "pids/mercato/web-0/pids.current", "3\n");
  fs::create_directories(root / "cpu/mercato/web-0");
  auto s = readCgroupStats(cg, CgroupMode::kV1, root.path());
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  EXPECT_EQ(s->cpuNanos, 2500000000u);
  EXPECT_EQ(s->memoryUsageBytes, 10485760u);
  EXPECT_EQ(s->memoryBytes, 10485760u - 1048576u);
  EXPECT_EQ(s->memoryPeakBytes, 20971520u);
  EXPECT_EQ(s->oomKills, 2u);
  EXPECT_EQ(s->pids, 3u);

  // Old kernels: no oom_kill line, failcnt instead.
  writeFile(root / "memory/mercato/web-0/memory.oom_control", "oom_kill_disable 0\n");
  writeFile(root / "memory/mercato/web-0/memory.failcnt", "5\n");
  EXPECT_EQ(*readOomKills(cg, CgroupMode::kV1, root.path()), 5u);

  // Combined cpu,cpuacct hierarchy.
  TempDir combined;
  writeFile(combined / "cpu,cpuacct/mercato/x/cpuacct.usage", "42\n");
  fs::create_directories(combined / "memory/mercato/x");
  EXPECT_EQ(readCgroupStats("/mercato/x", CgroupMode::kV1, combined.path())->cpuNanos, 42u);

  EXPECT_EQ(readCgroupStats("/mercato/none", CgroupMode::kV1, root.path()).status().code(),
            Code::kNotFound);
  EXPECT_EQ(readCgroupStats("/mercato/../../etc", CgroupMode::kV1, root.path()).status().code(),
            Code::kInvalidArgument);

  auto list = listCgroups("/mercato", CgroupMode::kV1, root.path());
  ASSERT_TRUE(list.isOk());
  EXPECT_EQ(*list, std::vector<std::string>{"/mercato/web-0"});
}

TEST(Metering, ReadsV2) {
  TempDir root;
  writeFile(root / "mercato/j/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
  writeFile(root / "mercato/j/memory.current", "8192\n");
  writeFile(root / "mercato/j/memory.peak", "16384\n");
  writeFile(root / "mercato/j/memory.stat", "anon 4096\ninactive_file 4096\n");
  writeFile(root / "mercato/j/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
  writeFile(root / "mercato/j/pids.current", "1\n");
  auto s = readCgroupStats("/mercato/j", CgroupMode::kV2, root.path());
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  EXPECT_EQ(s->cpuNanos, 1500000u);
  EXPECT_EQ(s->memoryUsageBytes, 8192u);
  EXPECT_EQ(s->memoryBytes, 4096u);
  EXPECT_EQ(s->memoryPeakBytes, 16384u);
  EXPECT_EQ(s->oomKills, 1u);
  EXPECT_EQ(s->pids, 1u);
  EXPECT_EQ(memoryCgroupDir("/mercato/j", CgroupMode::kV2, "/r"), "/r/mercato/j");
}

TEST(Metering, RemoveCgroupIsTolerant) {
  TempDir root;
  fs::create_directories(root / "memory/mercato/a/child");
  fs::create_directories(root / "pids/mercato/a");
  fs::create_directories(root / "cpu/mercato/b");
  ASSERT_TRUE(removeCgroup("/mercato/a", CgroupMode::kV1, root.path()).isOk());
  EXPECT_FALSE(fs::exists(root / "memory/mercato/a"));
  EXPECT_FALSE(fs::exists(root / "pids/mercato/a"));
  EXPECT_TRUE(fs::exists(root / "cpu/mercato/b"));
  EXPECT_TRUE(removeCgroup("/mercato/a", CgroupMode::kV1, root.path()).isOk());  // again
  EXPECT_EQ(*listCgroups("/mercato", CgroupMode::kV1, root.path()),
            std::vector<std::string>{"/mercato/b"});
  EXPECT_TRUE(listCgroups("/nothing", CgroupMode::kV1, root.path())->empty());
}

TEST(Metering, InterfaceCounters) {
  TempDir net;
  writeFile(net / "veth1/statistics/rx_bytes", "1000\n");
  writeFile(net / "veth1/statistics/tx_bytes", "2000\n");
  writeFile(net / "veth1/statistics/rx_packets", "10\n");
  writeFile(net / "veth1/statistics/tx_packets", "20\n");
  auto c = readInterfaceCounters("veth1", net.path());
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->rxBytes, 1000u);
  EXPECT_EQ(c->txBytes, 2000u);
  EXPECT_EQ(c->txPackets, 20u);
  EXPECT_EQ(readInterfaceCounters("nope", net.path()).status().code(), Code::kNotFound);
  EXPECT_EQ(readInterfaceCounters("../x", net.path()).status().code(), Code::kInvalidArgument);
  // The real loopback always exists.
  EXPECT_TRUE(readInterfaceCounters("lo").isOk());
}

TEST(Metering, DetectsThisHost) {
  // Only that detection answers; which mode depends on the machine.
  CgroupMode m = detectCgroupMode();
  EXPECT_TRUE(m == CgroupMode::kV1 || m == CgroupMode::kV2);
  TempDir plain;
  EXPECT_EQ(detectCgroupMode(plain.path()), CgroupMode::kV1);
}

}  // namespace
}  // namespace mercato::runtime::host
