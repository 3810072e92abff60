// OCI spec generation and user resolution (pure: reads only a fake rootfs in a temp dir).
#include "runtime/runc/host/oci_spec.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace mercato::runtime::host {
namespace {
using nlohmann::json;
using testing::TempDir;

class OciSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::writeFile(dir_ / "rootfs/etc/passwd",
                       "root:x:0:0:root:/root:/bin/sh\n"
                       "# comment\n"
                       "app:x:1000:1000:app:/home/app:/bin/sh\n"
                       "broken-line\n"
                       "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
    testing::writeFile(dir_ / "rootfs/etc/group",
                       "root:x:0:\napp:x:1000:\nextra:x:1001:app,other\nvideo:x:44:other\n"
                       "nogroup:x:65534:\n");
    base_.id = "web-0";
    base_.rootfs = dir_ / "rootfs";
    base_.args = {"/bin/server", "--port", "8080"};
    base_.hostCpus = 2;
  }
  TempDir dir_;
  ContainerConfig base_;
};

TEST_F(OciSpecTest, DefaultsAreHardened) {
  auto spec = makeOciSpec(base_);
  ASSERT_TRUE(spec.isOk()) << spec.status().toString();
  const json& s = *spec;
  EXPECT_EQ(s["ociVersion"], "1.0.2");
  EXPECT_EQ(s["process"]["args"], json({"/bin/server", "--port", "8080"}));
  EXPECT_EQ(s["process"]["terminal"], false);
  EXPECT_EQ(s["process"]["noNewPrivileges"], true);
  EXPECT_EQ(s["process"]["user"]["uid"], 0);
  EXPECT_EQ(s["process"]["cwd"], "/");
  EXPECT_EQ(s["process"]["env"][0].get<std::string>().rfind("PATH=", 0), 0u);
  const json& caps = s["process"]["capabilities"];
  EXPECT_EQ(caps["bounding"], caps["effective"]);
  EXPECT_EQ(caps["bounding"], caps["permitted"]);
  EXPECT_FALSE(caps.contains("ambient"));
  EXPECT_FALSE(caps.contains("inheritable"));
  for (const auto& c : caps["bounding"]) {
    EXPECT_NE(c, "CAP_NET_RAW");
    EXPECT_NE(c, "CAP_SYS_ADMIN");
    EXPECT_NE(c, "CAP_MKNOD");
  }
  EXPECT_EQ(s["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
  EXPECT_EQ(s["root"]["path"], base_.rootfs);
  EXPECT_EQ(s["root"]["readonly"], false);
  EXPECT_EQ(s["hostname"], "web-0");
  std::vector<std::string> dests;
  for (const auto& m : s["mounts"]) dests.push_back(m["destination"]);
  EXPECT_EQ(dests, (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                             "/sys", "/sys/fs/cgroup"}));
  const json& linux = s["linux"];
  EXPECT_EQ(linux["cgroupsPath"], "/mercato/web-0");
  std::vector<std::string> ns;
  for (const auto& n : linux["namespaces"]) {
    ns.push_back(n["type"]);
    EXPECT_FALSE(n.contains("path"));
  }
  EXPECT_EQ(ns, (std::vector<std::string>{"pid", "ipc", "uts", "mount", "network"}));
  EXPECT_EQ(linux["resources"]["devices"][0], json({{"allow", false}, {"access", "rwm"}}));
  EXPECT_GT(linux["resources"]["devices"].size(), 5u);
  EXPECT_FALSE(linux["resources"].contains("cpu"));
  EXPECT_FALSE(linux["resources"].contains("memory"));
  EXPECT_FALSE(linux["resources"].contains("pids"));
  EXPECT_EQ(linux["maskedPaths"].size(), 10u);
  EXPECT_EQ(linux["readonlyPaths"].size(), 5u);
}

TEST_F(OciSpecTest, ResourcesNetnsEtcAndReadonly) {
  testing::writeFile(dir_ / "etc/hosts", "x");
  testing::writeFile(dir_ / "etc/resolv.conf", "x");
  base_.cpuMillicores = 250;
  base_.memoryBytes = 64 << 20;
  base_.pidsLimit = 100;
  base_.netnsPath = "/var/run/netns/web-0";
  base_.etcDir = dir_ / "etc";
  base_.readonlyRootfs = true;
  base_.cgroupsPath = "/mercato/custom";
  base_.nofile = 4096;
  base_.mounts = {{"/data/vol", "/data", true}};
  auto spec = makeOciSpec(base_);
  ASSERT_TRUE(spec.isOk()) << spec.status().toString();
  const json& r = (*spec)["linux"]["resources"];
  EXPECT_EQ(r["cpu"]["quota"], 25000);
  EXPECT_EQ(r["cpu"]["period"], 100000);
  EXPECT_EQ(r["memory"]["limit"], 64 << 20);
  EXPECT_EQ(r["memory"]["swap"], 64 << 20);
  EXPECT_EQ(r["pids"]["limit"], 100);
  EXPECT_EQ((*spec)["linux"]["namespaces"][4]["path"], "/var/run/netns/web-0");
  EXPECT_EQ((*spec)["linux"]["cgroupsPath"], "/mercato/custom");
  EXPECT_EQ((*spec)["root"]["readonly"], true);
  EXPECT_EQ((*spec)["process"]["rlimits"][0]["hard"], 4096);
  std::vector<std::string> dests;
  for (const auto& m : (*spec)["mounts"]) dests.push_back(m["destination"]);
  // /tmp tmpfs for the read-only root; only the etc files that exist are bound.
  EXPECT_NE(std::find(dests.begin(), dests.end(), "/tmp"), dests.end());
  EXPECT_NE(std::find(dests.begin(), dests.end(), "/etc/hosts"), dests.end());
  EXPECT_NE(std::find(dests.begin(), dests.end(), "/etc/resolv.conf"), dests.end());
  EXPECT_EQ(std::find(dests.begin(), dests.end(), "/etc/hostname"), dests.end());
  EXPECT_EQ((*spec)["mounts"].back()["source"], "/data/vol");
  EXPECT_NE(std::find((*spec)["mounts"].back()["options"].begin(),
                      (*spec)["mounts"].back()["options"].end(), "ro"),
            (*spec)["mounts"].back()["options"].end());
}

TEST_F(OciSpecTest, ImpossibleInputsNameTheField) {
  struct Case {
    std::function<void(ContainerConfig&)> tweak;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](ContainerConfig& c) { c.memoryBytes = 1 << 20; }, "resources.memory"},
      {[](ContainerConfig& c) { c.memoryBytes = -1; }, "resources.memory"},
      {[](ContainerConfig& c) { c.cpuMillicores = -5; }, "resources.cpu"},
      {[](ContainerConfig& c) { c.cpuMillicores = 2001; }, "resources.cpu"},
      {[](ContainerConfig& c) { c.pidsLimit = -1; }, "resources.pids"},
      {[](ContainerConfig& c) { c.args.clear(); }, "args"},
      {[](ContainerConfig& c) { c.cwd = "relative/dir"; }, "cwd"},
      {[](ContainerConfig& c) {
         c.env = {"OK=1", "NOEQUALS"};
       },
       "env[1]"},
      {[](ContainerConfig& c) { c.env = {"=value"}; }, "env[0]"},
      {[](ContainerConfig& c) { c.id = "bad/id"; }, "id"},
      {[](ContainerConfig& c) { c.rootfs = "rootfs"; }, "rootfs"},
      {[](ContainerConfig& c) { c.user = "ghost"; }, "user"},
      {[](ContainerConfig& c) { c.user = "app:ghosts"; }, "user"},
      {[](ContainerConfig& c) { c.user = ":5"; }, "user"},
      {[](ContainerConfig& c) {
         c.mounts = {{"rel", "/x", false}};
       },
       "mounts[0]"},
  };
  for (const auto& c : cases) {
    ContainerConfig cfg = base_;
    c.tweak(cfg);
    auto spec = makeOciSpec(cfg);
    ASSERT_FALSE(spec.isOk()) << c.field;
    EXPECT_EQ(spec.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(spec.status().message().rfind(c.field, 0), 0u) << spec.status().message();
  }
  ContainerConfig ok = base_;
  ok.cpuMillicores = 2000;
  ok.memoryBytes = kMinMemoryBytes;
  EXPECT_TRUE(makeOciSpec(ok).isOk());
}

TEST_F(OciSpecTest, ResolveUser) {
  std::string rootfs = dir_ / "rootfs";
  auto r = resolveUser(rootfs, "");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->uid, 0u);
  r = resolveUser(rootfs, "nobody");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->uid, 65534u);
  EXPECT_EQ(r->gid, 65534u);
  r = resolveUser(rootfs, "app");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->uid, 1000u);
  EXPECT_EQ(r->gid, 1000u);
  EXPECT_EQ(r->additionalGids, std::vector<uint32_t>{1001});
  r = resolveUser(rootfs, "app:video");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->gid, 44u);
  r = resolveUser(rootfs, "1000");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->gid, 1000u);  // from passwd
  r = resolveUser(rootfs, "4242:7");
  ASSERT_TRUE(r.isOk());  // numeric ids need no passwd entry
  EXPECT_EQ(r->uid, 4242u);
  EXPECT_EQ(r->gid, 7u);
  r = resolveUser(rootfs, "4242");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->gid, 0u);
  EXPECT_FALSE(resolveUser(rootfs, "ghost").isOk());
  // An image without /etc/passwd: only numeric users work.
  EXPECT_TRUE(resolveUser(dir_ / "empty", "12:34").isOk());
  EXPECT_FALSE(resolveUser(dir_ / "empty", "app").isOk());
}

TEST_F(OciSpecTest, BundleAndEtcFiles) {
  auto spec = makeOciSpec(base_);
  ASSERT_TRUE(spec.isOk());
  ASSERT_TRUE(writeBundleConfig(dir_ / "bundle", *spec).isOk());
  EXPECT_EQ(json::parse(testing::readFile(dir_ / "bundle/config.json")), *spec);

  ASSERT_TRUE(writeEtcFiles(dir_ / "etc", {.hostname = "web-0",
                                           .hosts = {"10.89.1.2 web-0"},
                                           .nameservers = {"10.0.0.53", "10.0.0.54"},
                                           .search = {"svc.local"}})
                  .isOk());
  EXPECT_EQ(testing::readFile(dir_ / "etc/hostname"), "web-0\n");
  EXPECT_NE(testing::readFile(dir_ / "etc/hosts").find("10.89.1.2 web-0\n"), std::string::npos);
  EXPECT_EQ(testing::readFile(dir_ / "etc/resolv.conf"),
            "nameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch svc.local\n");
  EtcFiles minimal;
  minimal.hostname = "h";
  ASSERT_TRUE(writeEtcFiles(dir_ / "etc2", minimal).isOk());
  std::string resolv = testing::readFile(dir_ / "etc2/resolv.conf");
  EXPECT_NE(resolv.find("nameserver "), std::string::npos);
  EXPECT_EQ(resolv.find("nameserver 127."), std::string::npos);
}

}  // namespace
}  // namespace mercato::runtime::host
