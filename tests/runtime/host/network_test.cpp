// CNI networking with isolation, end to end: two deployments (two bridges), two instances each,
// busybox httpd in every instance. Same-deployment traffic works, cross-deployment traffic is
// dropped, the host reaches every instance, and teardown leaves nothing behind.
// Label: runc (needs root, runc, busybox-static, CNI plugins, iproute2, iptables).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/runc/host/metering.hpp"
#include "runtime/runc/host/network.hpp"
#include "runtime/runc/host/oci_spec.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/host/shim.hpp"
#include "test_util.hpp"

namespace mercato::runtime::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;

std::string runOut(std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = 30s;
  auto r = runProcess(spec);
  return r ? r->out : std::string();
}

// A /24 under 10.89.0.0/16 not routed on this host yet (random, so parallel suites rarely meet).
std::string freeSubnet(std::vector<std::string>& taken) {
  std::string routes = runOut({"ip", "-o", "-4", "route"});
  for (int attempt = 0; attempt < 200; ++attempt) {
    int octet = 128 + static_cast<int>(std::stoul(testing::randomHex(2), nullptr, 16) % 126);
    std::string net = "10.89." + std::to_string(octet) + ".0/24";
    if (routes.find(net) != std::string::npos) continue;
    if (std::find(taken.begin(), taken.end(), net) != taken.end()) continue;
    taken.push_back(net);
    return net;
  }
  return "10.89.250.0/24";
}

std::string bodyOf(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

// The same GET from the host.
std::string fetchFromHost(const std::string& ip) {
  return bodyOf(runOut({"/usr/bin/busybox", "sh", "-c",
                        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 " + ip + " 8080"}));
}

class NetworkTest : public ::testing::Test {
 protected:
  struct Instance {
    std::string id;
    NetworkAttachRequest req;
    NetworkAttachment net;
    ShimOptions shim;
  };

  void SetUp() override {
    std::string why = testing::runcUnavailableReason();
    if (why.empty() && access("/usr/lib/cni/bridge", X_OK) != 0)
      why = "needs CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)";
    if (!why.empty()) GTEST_SKIP() << "network tests: " << why;
    rootfs_ = dir_ / "rootfs";
    testing::buildBusyboxRootfs(rootfs_);
    runc_ = Runc(kDefaultRuncBinary, dir_ / "runc-root");
  }

  void TearDown() override {
    for (auto& in : instances_) {
      (void)runc_.kill(in.id, SIGKILL);
      for (int i = 0; i < 100 && !readExitFile(in.shim.exitFile).isOk(); ++i)
        std::this_thread::sleep_for(20ms);
      (void)runc_.remove(in.id, true);
      (void)detach(in.req);
      (void)deleteNetns(in.req.netnsName);
      (void)removeCgroup("/mercato/" + in.id);
    }
    for (const auto& b : bridges_) (void)removeBridge(b, dir_ / "ipam");
  }

  Instance& startInstance(const std::string& bridge, const std::string& subnet) {
    Instance in;
    in.id = testing::uniqueName();
    in.req.containerId = in.id;
    in.req.netnsName = in.id;
    in.req.bridge = bridge;
    in.req.subnet = subnet;
    in.req.ipamDataDir = dir_ / "ipam";
    instances_.push_back(in);
    Instance& ref = instances_.back();
    Status st = createNetns(ref.req.netnsName);
    EXPECT_TRUE(st.isOk()) << st.toString();
    auto net = attach(ref.req);
    EXPECT_TRUE(net.isOk()) << net.status().toString();
    if (!net) return ref;
    ref.net = *net;

    ContainerConfig c;
    c.id = ref.id;
    c.rootfs = rootfs_;
    c.readonlyRootfs = true;
    c.args = {"httpd", "-f", "-p", "8080", "-h", "/var/www"};
    c.netnsPath = netnsPath(ref.req.netnsName);
    auto spec = makeOciSpec(c);
    EXPECT_TRUE(spec.isOk()) << spec.status().toString();
    std::string bundle = dir_ / ref.id;
    EXPECT_TRUE(writeBundleConfig(bundle, *spec).isOk());
    ref.shim.shimBinary = MERCATO_SHIM_BINARY;
    ref.shim.runcRoot = runc_.root();
    ref.shim.id = ref.id;
    ref.shim.bundleDir = bundle;
    ref.shim.stdoutLog = bundle + "/stdout.log";
    ref.shim.stderrLog = bundle + "/stderr.log";
    ref.shim.exitFile = bundle + "/exit.json";
    auto started = startContainer(ref.shim);
    EXPECT_TRUE(started.isOk()) << started.status().toString();
    return ref;
  }

  // An HTTP GET from inside `from` to `ip` with busybox nc (busybox-static's wget crashes in
  // its resolver); returns the body or "" on failure.
  std::string fetchFrom(const Instance& from, const std::string& ip) {
    ExecOptions ex;
    ex.args = {"sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 " + ip + " 8080"};
    ex.timeout = 10s;
    auto r = runc_.exec(from.id, ex);
    return r ? bodyOf(r->stdoutData) : std::string();
  }

  TempDir dir_;
  std::string rootfs_;
  Runc runc_;
  std::deque<Instance> instances_;
  std::vector<std::string> bridges_;
};

TEST(NetworkHelpers, BridgeNamesAndSubnets) {
  std::string b = bridgeNameFor("deployment-1");
  EXPECT_EQ(b.size(), 12u);
  EXPECT_EQ(b.rfind("mcb-", 0), 0u);
  EXPECT_EQ(b, bridgeNameFor("deployment-1"));
  EXPECT_NE(b, bridgeNameFor("deployment-2"));

  EXPECT_EQ(*allocateSubnet({}), "10.89.1.0/24");
  EXPECT_EQ(*allocateSubnet({"10.89.1.0/24", "10.89.2.0/24"}), "10.89.3.0/24");
  EXPECT_EQ(*allocateSubnet({"10.89.2.0/24"}), "10.89.1.0/24");
  EXPECT_EQ(*allocateSubnet({}, "10.90.7.0/24"), "10.90.7.0/24");
  EXPECT_EQ(allocateSubnet({"10.90.7.0/24"}, "10.90.7.0/24").status().code(),
            Code::kResourceExhausted);
  EXPECT_EQ(allocateSubnet({}, "nonsense").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(allocateSubnet({}, "10.0.0.0/4").status().code(), Code::kInvalidArgument);
}

TEST_F(NetworkTest, IsolationBetweenDeployments) {
  std::vector<std::string> taken;
  std::string bridgeA = "mcb-" + testing::randomHex(8), bridgeB = "mcb-" + testing::randomHex(8);
  bridges_ = {bridgeA, bridgeB};
  std::string subnetA = freeSubnet(taken), subnetB = freeSubnet(taken);
  Instance& a1 = startInstance(bridgeA, subnetA);
  Instance& a2 = startInstance(bridgeA, subnetA);
  Instance& b1 = startInstance(bridgeB, subnetB);
  Instance& b2 = startInstance(bridgeB, subnetB);
  ASSERT_FALSE(HasFailure());
  for (auto* in : {&a1, &a2, &b1, &b2}) {
    EXPECT_FALSE(in->net.containerIp.empty());
    EXPECT_FALSE(in->net.hostVeth.empty());
    EXPECT_FALSE(in->net.containerMac.empty());
    EXPECT_EQ(in->net.prefixLength, 24);
  }
  EXPECT_EQ(a1.net.gateway, subnetA.substr(0, subnetA.rfind('.')) + ".1");
  EXPECT_EQ(testing::readFile("/proc/sys/net/ipv4/ip_forward"), "1\n");

  // Wait until every httpd listens (the host reaches instance IPs directly).
  for (auto* in : {&a1, &a2, &b1, &b2}) {
    std::string body;
    for (int i = 0; i < 50 && body.empty(); ++i) {
      body = fetchFromHost(in->net.containerIp);
      if (body.empty()) std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(body, "hello from mercato\n") << "host -> " << in->net.containerIp;
  }

  EXPECT_EQ(fetchFrom(a1, a2.net.containerIp), "hello from mercato\n");
  EXPECT_EQ(fetchFrom(b2, b1.net.containerIp), "hello from mercato\n");
  EXPECT_EQ(fetchFrom(a1, b1.net.containerIp), "") << "cross-deployment traffic must drop";
  EXPECT_EQ(fetchFrom(b1, a2.net.containerIp), "") << "cross-deployment traffic must drop";

  // Host-side veth counters saw the traffic (rx on the host end = instance egress).
  auto counters = readInterfaceCounters(a2.net.hostVeth);
  ASSERT_TRUE(counters.isOk()) << counters.status().toString();
  EXPECT_GT(counters->rxBytes, 0u);
  EXPECT_GT(counters->txBytes, 0u);

  std::string rules = runOut({"iptables", "-w", "-S", kIsolationChain});
  EXPECT_NE(rules.find("--physdev-is-bridged"), std::string::npos);
  EXPECT_EQ(rules.find(bridgeA), std::string::npos) << "rules are host-wide, not per bridge";
  std::string nat = runOut({"iptables", "-w", "-t", "nat", "-S", "POSTROUTING"});
  EXPECT_NE(nat.find("! -o " + bridgeA + " -j MASQUERADE"), std::string::npos) << nat;
  EXPECT_TRUE(ensureIsolation().isOk());  // idempotent
  std::string again = runOut({"iptables", "-w", "-S", kIsolationChain});
  EXPECT_EQ(std::count(again.begin(), again.end(), '\n'),
            std::count(rules.begin(), rules.end(), '\n'));

  // Teardown, then nothing is left behind.
  std::vector<std::string> veths;
  for (auto& in : instances_) veths.push_back(in.net.hostVeth);
  TearDown();
  std::string links = runOut({"ip", "-o", "link"});
  std::string netns = runOut({"ip", "netns", "list"});
  std::string ipt = runOut({"iptables", "-w", "-S"});
  std::string natAfter = runOut({"iptables", "-w", "-t", "nat", "-S"});
  for (const auto& b : bridges_) {
    EXPECT_EQ(links.find(b), std::string::npos) << b;
    EXPECT_EQ(ipt.find(b), std::string::npos) << b;
    EXPECT_EQ(natAfter.find(b), std::string::npos) << b;
    EXPECT_FALSE(fs::exists(dir_ / ("ipam/" + b))) << b;
  }
  for (const auto& v : veths) EXPECT_EQ(links.find(v + "@"), std::string::npos) << v;
  for (auto& in : instances_) {
    EXPECT_EQ(netns.find(in.req.netnsName), std::string::npos) << in.req.netnsName;
    EXPECT_EQ(natAfter.find(in.id), std::string::npos) << in.id;
    auto cg = listCgroups("/mercato");
    ASSERT_TRUE(cg.isOk());
    EXPECT_EQ(std::find(cg->begin(), cg->end(), "/mercato/" + in.id), cg->end()) << in.id;
  }
  instances_.clear();
  bridges_.clear();
}

TEST_F(NetworkTest, DetachIsIdempotentAndErrorsCarryPluginMessage) {
  std::string bridge = "mcb-" + testing::randomHex(8);
  bridges_ = {bridge};
  NetworkAttachRequest req;
  req.containerId = testing::uniqueName();
  req.netnsName = req.containerId;
  req.bridge = bridge;
  req.subnet = "10.89.251.0/24";
  req.ipamDataDir = dir_ / "ipam";
  // Attach to a namespace that doesn't exist: a clear error, nothing created.
  auto r = attach(req);
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  // A subnet the plugin rejects: its {code,msg} is in the message.
  ASSERT_TRUE(createNetns(req.netnsName).isOk());
  EXPECT_EQ(createNetns(req.netnsName).code(), Code::kAlreadyExists);
  NetworkAttachRequest bad = req;
  bad.cniPluginDir = dir_ / "no-plugins";
  r = attach(bad);
  EXPECT_FALSE(r.isOk());
  EXPECT_TRUE(detach(req).isOk());  // never attached: fine
  ASSERT_TRUE(deleteNetns(req.netnsName).isOk());
  EXPECT_TRUE(deleteNetns(req.netnsName).isOk());
  EXPECT_TRUE(detach(req).isOk());  // namespace gone: fine
  EXPECT_TRUE(removeBridge(bridge, dir_ / "ipam").isOk());
  auto names = listNetns();
  ASSERT_TRUE(names.isOk());
  EXPECT_EQ(std::find(names->begin(), names->end(), req.netnsName), names->end());
}

}  // namespace
}  // namespace mercato::runtime::host
