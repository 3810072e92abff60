// Parsers of child-process output: runc list/state, CNI results and errors, exit files, shim
// options, pid files.
#include <unistd.h>

#include <gtest/gtest.h>

#include "runtime/runc/host/network.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/host/shim.hpp"
#include "test_util.hpp"

namespace mercato::runtime::host {
namespace {
using testing::TempDir;

TEST(RuncParsers, List) {
  auto l = parseRuncList(R"([{"ociVersion":"1.0.2","id":"web-0","pid":4242,"status":"running",
    "bundle":"/b/web-0","rootfs":"/r","created":"2026-01-01T00:00:00Z","owner":"root"},
    {"id":"job-1","pid":0,"status":"stopped","bundle":"/b/job-1"}])");
  ASSERT_TRUE(l.isOk()) << l.status().toString();
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].id, "web-0");
  EXPECT_EQ((*l)[0].pid, 4242);
  EXPECT_EQ((*l)[0].status, "running");
  EXPECT_EQ((*l)[0].bundle, "/b/web-0");
  EXPECT_EQ((*l)[1].status, "stopped");
  auto empty = parseRuncList("null\n");  // what runc prints with no containers
  ASSERT_TRUE(empty.isOk());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(parseRuncList("not json").isOk());
  EXPECT_FALSE(parseRuncList(R"({"id":"x"})").isOk());
  EXPECT_FALSE(parseRuncList(R"([{"pid":1}])").isOk());
  EXPECT_FALSE(parseRuncList(R"([{"id":"x","pid":-4}])").isOk());
  auto odd = parseRuncList(R"([{"id":"x","pid":"12","status":5}])");  // wrong types: ignored
  ASSERT_TRUE(odd.isOk());
  EXPECT_EQ((*odd)[0].pid, 0);
}

TEST(RuncParsers, State) {
  auto s = parseRuncState(R"({"id":"a","pid":7,"status":"paused","bundle":"/x"})");
  ASSERT_TRUE(s.isOk());
  EXPECT_EQ(s->pid, 7);
  EXPECT_EQ(s->status, "paused");
  EXPECT_FALSE(parseRuncState("[]").isOk());
}

constexpr const char* kCniResult = R"({
  "cniVersion": "1.0.0",
  "interfaces": [
    {"name": "mcb-0000abcd", "mac": "ea:c9:4a:13:ed:3f"},
    {"name": "vethe6524e61", "mac": "fe:70:01:70:d2:b7"},
    {"name": "eth0", "mac": "ea:5c:5b:58:ea:63", "sandbox": "/var/run/netns/x"}
  ],
  "ips": [{"interface": 2, "address": "10.89.252.2/24", "gateway": "10.89.252.1"}],
  "routes": [{"dst": "0.0.0.0/0"}],
  "dns": {}
})";

TEST(CniParsers, Result) {
  auto a = parseCniResult(kCniResult, "mcb-0000abcd");
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_EQ(a->containerIp, "10.89.252.2");
  EXPECT_EQ(a->prefixLength, 24);
  EXPECT_EQ(a->gateway, "10.89.252.1");
  EXPECT_EQ(a->hostVeth, "vethe6524e61");
  EXPECT_EQ(a->containerMac, "ea:5c:5b:58:ea:63");
  EXPECT_FALSE(parseCniResult("{}", "b").isOk());
  EXPECT_FALSE(parseCniResult(R"({"ips":[{"address":"fe80::1/64"}]})", "b").isOk());
  EXPECT_FALSE(parseCniResult(R"({"ips":[{"address":"10.0.0.300/24"}]})", "b").isOk());
  auto minimal = parseCniResult(R"({"ips":[{"address":"10.1.2.3/16"}]})", "b");
  ASSERT_TRUE(minimal.isOk());
  EXPECT_EQ(minimal->containerIp, "10.1.2.3");
  EXPECT_TRUE(minimal->hostVeth.empty());
}

TEST(CniParsers, Error) {
  EXPECT_EQ(describeCniError(R"({"code":11,"msg":"failed to allocate","details":"range full"})"),
            "CNI error 11: failed to allocate (range full)");
  EXPECT_EQ(describeCniError("  plain text\n"), "plain text");
  EXPECT_EQ(describeCniError(R"({"msg":"only msg"})"), "only msg");
}

TEST(ShimParsers, ExitFile) {
  ExitInfo e;
  e.exitCode = 137;
  e.signal = 9;
  e.oomKilled = true;
  e.startedAtMs = 1000;
  e.finishedAtMs = 2500;
  auto back = parseExitInfo(exitInfoToJson(e).dump());
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(back->exitCode, 137);
  EXPECT_EQ(back->signal, 9);
  EXPECT_TRUE(back->oomKilled);
  EXPECT_EQ(back->finishedAtMs - back->startedAtMs, 1500);
  EXPECT_FALSE(parseExitInfo(R"({"exitCode":"3"})").isOk());
  EXPECT_FALSE(parseExitInfo(R"({"exitCode":300})").isOk());
  EXPECT_FALSE(parseExitInfo("garbage").isOk());
  TempDir dir;
  EXPECT_EQ(readExitFile(dir / "none.json").status().code(), Code::kNotFound);
}

TEST(ShimParsers, OptionsRoundTripAndDefaults) {
  ShimOptions o;
  o.shimBinary = "/bin/mercato-shim";
  o.id = "web-0";
  o.bundleDir = "/b/web-0";
  o.stdoutLog = "/l/out";
  o.stderrLog = "/l/err";
  o.exitFile = "/b/web-0/exit.json";
  o.maxLogBytes = 1234;
  auto filled = withShimDefaults(o);
  ASSERT_TRUE(filled.isOk());
  EXPECT_EQ(filled->pidFile, "/b/web-0/container.pid");
  EXPECT_EQ(filled->cgroupsPath, "/mercato/web-0");
  auto back = shimOptionsFromJson(shimOptionsToJson(*filled).dump());
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(back->maxLogBytes, 1234u);
  EXPECT_EQ(back->shimPidFile, "/b/web-0/shim.pid");
  o.exitFile.clear();
  EXPECT_EQ(withShimDefaults(o).status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(shimOptionsFromJson(R"({"maxLogBytes":"big"})").isOk());
  EXPECT_EQ(startContainer(o).status().code(), Code::kInvalidArgument);
}

TEST(ShimParsers, PidFiles) {
  TempDir dir;
  testing::writeFile(dir / "ok.pid", "4242");
  testing::writeFile(dir / "nl.pid", "17\n");
  testing::writeFile(dir / "bad.pid", "12ab");
  testing::writeFile(dir / "zero.pid", "0");
  EXPECT_EQ(*readPidFile(dir / "ok.pid"), 4242);
  EXPECT_EQ(*readPidFile(dir / "nl.pid"), 17);
  EXPECT_EQ(readPidFile(dir / "bad.pid").status().code(), Code::kInternal);
  EXPECT_EQ(readPidFile(dir / "zero.pid").status().code(), Code::kInternal);
  EXPECT_EQ(readPidFile(dir / "none.pid").status().code(), Code::kNotFound);
  EXPECT_TRUE(processExists(getpid()));
  EXPECT_FALSE(processExists(0));
}

}  // namespace
}  // namespace mercato::runtime::host
