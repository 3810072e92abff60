// CNI networking with isolation, end to end: two deployments (two bridges), busybox httpd in
// every instance. Same-deployment traffic works, cross-deployment traffic is dropped, the host
// reaches every instance; from inside an instance the host (its own gateway IP, another bridge's
// IP, a host address) and private and link-local destinations (a test "LAN" namespace with a
// nameserver and 169.254.169.254) are unreachable unless the deployment's nameservers or the
// provider's allow-list say otherwise; teardown leaves nothing behind. Also the /run/netns race
// of a new machine, in a private mount namespace (host_network_helper).
// Label: runc (needs root, runc, busybox-static, CNI plugins, iproute2, iptables).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/strings.hpp"
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

// A socket created inside the network namespace at `netnsPath` ("" = this one): a short-lived
// thread joins the namespace, creates it and leaves; the socket stays in that namespace.
int socketIn(const std::string& netnsPath, int type) {
  if (netnsPath.empty()) return ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int fd = -1;
  std::thread([&] {
    int ns = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return;
    if (::setns(ns, CLONE_NEWNET) == 0) fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    ::close(ns);
  }).join();
  return fd;
}

// A listener on ip:port (port 0: any) that serves on its own thread until destroyed and counts
// what reached it. TCP answers every connection with "hi\n"; UDP answers every datagram as a
// DNS server that knows no name would (the query back with QR set and rcode NXDOMAIN), so a
// resolver inside an instance gets a reply when the firewall lets the query through.
class Listener {
 public:
  Listener(const std::string& ip, int port, int type, const std::string& netnsPath = "")
      : type_(type) {
    fd_ = socketIn(netnsPath, type);
    if (fd_ < 0) return;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        (type == SOCK_STREAM && ::listen(fd_, 16) != 0)) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Listener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int port() const { return port_; }
  int hits() const { return hits_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (type_ == SOCK_STREAM) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        ++hits_;
        (void)!::write(c, "hi\n", 3);
        ::close(c);
      } else {
        unsigned char buf[512];
        sockaddr_in from{};
        socklen_t len = sizeof from;
        ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 12) continue;
        ++hits_;
        buf[2] |= 0x80;  // QR: a response
        buf[3] = 0x83;   // RA, rcode 3 (NXDOMAIN)
        ::sendto(fd_, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }

  int type_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
  std::thread thread_;
};

// Runs `ip args...`; records a failure when it fails.
void ipOrFail(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  ProcessSpec spec;
  spec.argv = args;
  spec.timeout = 30s;
  auto r = runProcess(spec);
  EXPECT_TRUE(r.isOk() && r->ok())
      << commandLine(args) << ": "
      << (r.isOk() ? r->describe() + " " + r->err : r.status().message());
}

// A random /24 under `prefix` ("10.254.") that no route on this host mentions.
std::string freeNet(const std::string& prefix) {
  std::string routes = runOut({"ip", "-o", "-4", "route"}) + runOut({"ip", "-o", "-4", "addr"});
  for (int attempt = 0; attempt < 200; ++attempt) {
    int octet = 1 + static_cast<int>(std::stoul(testing::randomHex(2), nullptr, 16) % 250);
    std::string net = prefix + std::to_string(octet) + ".";
    if (routes.find(net) == std::string::npos) return net;
  }
  return prefix + "251.";
}

// The lines of `iptables-save`/`ip6tables-save` that mention `word`.
std::vector<std::string> savedRulesWith(const std::string& word, bool v6 = false) {
  std::vector<std::string> out;
  for (const auto& line : split(runOut({v6 ? "ip6tables-save" : "iptables-save"}), '\n'))
    if (line.find(" " + word + " ") != std::string::npos ||
        (line.size() >= word.size() &&
         line.compare(line.size() - word.size(), word.size(), word) == 0))
      out.push_back(line);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// What `iptables -S CHAIN` prints when the chain holds exactly `rules`.
std::string chainText(const std::string& chain,
                      const std::vector<std::vector<std::string>>& rules) {
  std::string text = "-N " + chain + "\n";
  for (const auto& r : rules) {
    text += "-A " + chain;
    for (const auto& w : r) text += " " + w;
    text += "\n";
  }
  return text;
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

  Instance& startInstance(const std::string& bridge, const std::string& subnet,
                          std::vector<std::string> egressAllow = {},
                          std::vector<std::string> nameservers = {}) {
    Instance in;
    in.id = testing::uniqueName();
    in.req.containerId = in.id;
    in.req.netnsName = in.id;
    in.req.bridge = bridge;
    in.req.subnet = subnet;
    in.req.ipamDataDir = dir_ / "ipam";
    in.req.egressAllow = std::move(egressAllow);
    in.req.nameservers = std::move(nameservers);
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
    return bodyOf(shIn(from, "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 " + ip + " 8080"));
  }

  // Runs a shell command inside the instance and returns its stdout; a failed exec (not the
  // command's own failure) is a test failure.
  std::string shIn(const Instance& in, const std::string& command) {
    ExecOptions ex;
    ex.args = {"sh", "-c", command};
    ex.timeout = 20s;
    auto r = runc_.exec(in.id, ex);
    EXPECT_TRUE(r.isOk()) << "exec in " << in.id << ": " << r.status().toString();
    return r.isOk() ? r->stdoutData : std::string();
  }

  // A TCP connection from inside the instance to ip:port; true when the listener answered.
  bool connects(const Instance& in, const std::string& ip, int port) {
    return shIn(in, "echo x | nc -w 1 " + ip + " " + std::to_string(port)) == "hi\n";
  }

  // The same from the host (the control: the listener itself works).
  static bool hostConnects(const std::string& ip, int port) {
    return runOut({"/usr/bin/busybox", "sh", "-c",
                   "echo x | busybox nc -w 2 " + ip + " " + std::to_string(port)}) == "hi\n";
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
  // The constant chains read back exactly as isolationRules()/inputRules() say, so the next
  // process finds them equal and rebuilds nothing.
  EXPECT_EQ(rules, chainText(kIsolationChain, isolationRules()));
  EXPECT_EQ(runOut({"iptables", "-w", "-S", kInputChain}), chainText(kInputChain, inputRules()));
  if (access("/usr/sbin/ip6tables", X_OK) == 0) {
    EXPECT_EQ(runOut({"ip6tables", "-w", "-S", kIsolationChain}),
              chainText(kIsolationChain, isolationRules(true)));
    EXPECT_EQ(runOut({"ip6tables", "-w", "-S", kInputChain}),
              chainText(kInputChain, inputRules(true)));
  }
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

// From inside an instance: every host listener and every private or link-local destination is
// out of reach, except the deployment's nameservers (port 53 only) and the allow-list; the
// host itself still reaches all of them (the control) and its instances.
TEST_F(NetworkTest, HostAndPrivateDestinationsAreUnreachable) {
  std::vector<std::string> taken;
  std::string bridgeA = "mcb-" + testing::randomHex(8), bridgeB = "mcb-" + testing::randomHex(8);
  bridges_ = {bridgeA, bridgeB};
  std::string subnetA = freeSubnet(taken), subnetB = freeSubnet(taken);

  // The provider's "LAN": a namespace behind a veth, with a nameserver (.53), a host on the
  // allow-list (.80), one that is not (.81) and a metadata server (169.254.169.254).
  std::string lan = freeNet("10.254.");
  std::string lanNs = testing::uniqueName(), hostEnd = testing::uniqueName(),
              lanEnd = testing::uniqueName();
  std::string hostAddr;  // a host address that is not on a bridge (stands for eth0's)
  for (int i = 0; i < 50 && hostAddr.empty(); ++i) {
    std::string a =
        "198.51.100." + std::to_string(1 + std::stoul(testing::randomHex(2), nullptr, 16) % 254);
    if (runOut({"ip", "-o", "-4", "addr"}).find(a + "/") == std::string::npos) hostAddr = a;
  }
  struct Cleanup {
    std::string ns, hostEnd;
    ~Cleanup() {
      runOut({"ip", "link", "del", hostEnd});
      (void)deleteNetns(ns);
    }
  } cleanup{lanNs, hostEnd};
  ASSERT_TRUE(createNetns(lanNs).isOk());
  ipOrFail({"link", "add", hostEnd, "type", "veth", "peer", "name", lanEnd});
  ipOrFail({"link", "set", lanEnd, "netns", lanNs});
  ipOrFail({"addr", "add", lan + "1/24", "dev", hostEnd});
  ipOrFail({"link", "set", hostEnd, "up"});
  for (const std::string& a : {lan + "2/24", lan + "53/32", lan + "80/32", lan + "81/32",
                               std::string("169.254.169.254/32")})
    ipOrFail({"-n", lanNs, "addr", "add", a, "dev", lanEnd});
  ipOrFail({"-n", lanNs, "link", "set", lanEnd, "up"});
  ipOrFail({"-n", lanNs, "link", "set", "lo", "up"});
  ipOrFail({"-n", lanNs, "route", "add", "default", "via", lan + "1"});
  ipOrFail({"route", "add", "169.254.169.254/32", "dev", hostEnd});
  // The kernel may lack the dummy driver: the host address sits on the veth's host end, a host
  // interface that is not a bridge, like eth0.
  ipOrFail({"addr", "add", hostAddr + "/32", "dev", hostEnd});
  ASSERT_FALSE(HasFailure());

  // Deployment A may use the LAN's nameserver and .80; B has the defaults (the host's
  // nameservers, nothing allowed). The first start of a deployment installs its rules: time it.
  std::string ns = lan + "53", allowed = lan + "80", blocked = lan + "81";
  ASSERT_TRUE(ensureIsolation().isOk());
  NetworkAttachRequest timing;
  timing.bridge = bridgeA;
  timing.subnet = subnetA;
  timing.egressAllow = {allowed + "/32"};
  timing.nameservers = {ns};
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(ensureBridgeRules(timing).isOk());
  auto t1 = std::chrono::steady_clock::now();
  (void)runOut({"iptables", "-w", "-t", "nat", "-S", "POSTROUTING"});
  auto t2 = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::cout << "bridge rules of a new deployment: " << ms(t1 - t0)
            << " ms (one iptables-restore); one iptables exec for reference: " << ms(t2 - t1)
            << " ms\n";

  Instance& a1 = startInstance(bridgeA, subnetA, {allowed + "/32"}, {ns});
  Instance& b1 = startInstance(bridgeB, subnetB);
  ASSERT_FALSE(HasFailure());
  std::string gatewayA = a1.net.gateway, gatewayB = b1.net.gateway;
  ASSERT_FALSE(gatewayA.empty());
  ASSERT_FALSE(gatewayB.empty());

  std::map<std::string, std::unique_ptr<Listener>> on;  // by name
  const std::string lanPath = netnsPath(lanNs);
  on["gatewayA"] = std::make_unique<Listener>(gatewayA, 0, SOCK_STREAM);
  on["gatewayB"] = std::make_unique<Listener>(gatewayB, 0, SOCK_STREAM);
  on["host"] = std::make_unique<Listener>(hostAddr, 0, SOCK_STREAM);
  on["metadata"] = std::make_unique<Listener>("169.254.169.254", 80, SOCK_STREAM, lanPath);
  on["allowed"] = std::make_unique<Listener>(allowed, 0, SOCK_STREAM, lanPath);
  on["blocked"] = std::make_unique<Listener>(blocked, 0, SOCK_STREAM, lanPath);
  on["nsOther"] = std::make_unique<Listener>(ns, 0, SOCK_STREAM, lanPath);  // not port 53
  on["dnsTcp"] = std::make_unique<Listener>(ns, 53, SOCK_STREAM, lanPath);
  on["dnsUdp"] = std::make_unique<Listener>(ns, 53, SOCK_DGRAM, lanPath);
  std::map<std::string, std::string> addr = {
      {"gatewayA", gatewayA}, {"gatewayB", gatewayB},
      {"host", hostAddr},     {"metadata", "169.254.169.254"},
      {"allowed", allowed},   {"blocked", blocked},
      {"nsOther", ns},        {"dnsTcp", ns}};
  for (auto& [name, l] : on) ASSERT_TRUE(l->ok()) << name;
  // The control: the host reaches every listener.
  for (const auto& [name, ip] : addr)
    EXPECT_TRUE(hostConnects(ip, on[name]->port())) << "host -> " << name << " " << ip;
  ASSERT_FALSE(HasFailure());
  std::map<std::string, int> before;
  for (auto& [name, l] : on) before[name] = l->hits();

  // From A: only its nameserver (on 53) and its allow-list.
  for (const char* name : {"gatewayA", "gatewayB", "host", "metadata", "blocked", "nsOther"}) {
    EXPECT_FALSE(connects(a1, addr[name], on[name]->port()))
        << "A -> " << name << " " << addr[name];
    EXPECT_EQ(on[name]->hits(), before[name]) << "A -> " << name << " reached the listener";
  }
  EXPECT_TRUE(connects(a1, allowed, on["allowed"]->port())) << "A -> its allow-list";
  EXPECT_TRUE(connects(a1, ns, 53)) << "A -> its nameserver over TCP";
  std::string answer = shIn(a1, "nslookup -timeout=1 -retry=1 example.com " + ns + " 2>&1");
  EXPECT_NE(answer.find("NXDOMAIN"), std::string::npos) << answer;
  EXPECT_GT(on["dnsUdp"]->hits(), before["dnsUdp"]) << "A's DNS query reached its nameserver";
  // From B: neither A's nameserver nor A's allow-list.
  int dnsHits = on["dnsUdp"]->hits();
  EXPECT_FALSE(connects(b1, allowed, on["allowed"]->port())) << "B -> A's allow-list";
  EXPECT_FALSE(connects(b1, ns, 53)) << "B -> A's nameserver";
  (void)shIn(b1, "nslookup -timeout=1 -retry=1 example.com " + ns + " 2>&1");
  EXPECT_EQ(on["dnsUdp"]->hits(), dnsHits) << "B's DNS query reached A's nameserver";
  EXPECT_FALSE(connects(b1, gatewayB, on["gatewayB"]->port())) << "B -> its own gateway";

  // B's default nameservers are the host's: DNS through them works when it works from the host.
  std::string hostNs = hostResolvConf().nameservers.at(0);
  auto resolved = [](const std::string& out) {
    return out.find("NXDOMAIN") != std::string::npos || out.find("Name:") != std::string::npos;
  };
  std::string fromHost =
      runOut({"/usr/bin/busybox", "sh", "-c",
              "busybox nslookup -timeout=2 -retry=1 example.com " + hostNs + " 2>&1"});
  auto egress = savedRulesWith(bridgeB);
  EXPECT_TRUE(contains(egress, "-A " + std::string(kEgressAllowChain) + " -d " + hostNs +
                                   "/32 -i " + bridgeB + " -p udp -m udp --dport 53 -j ACCEPT"))
      << "B's nameserver accept; B's rules:\n"
      << ::testing::PrintToString(egress);
  if (resolved(fromHost)) {
    std::string out = shIn(b1, "nslookup -timeout=2 -retry=1 example.com " + hostNs + " 2>&1");
    EXPECT_TRUE(resolved(out)) << "B -> the host's nameserver " << hostNs << ": " << out;
  } else {
    std::cout << "the host's nameserver " << hostNs << " does not answer the host either ("
              << fromHost << "): DNS through it from an instance not checked\n";
  }

  // The host still reaches its instances (replies come back through INPUT as ESTABLISHED).
  for (auto* in : {&a1, &b1}) {
    std::string body;
    for (int i = 0; i < 50 && body.empty(); ++i) {
      body = fetchFromHost(in->net.containerIp);
      if (body.empty()) std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(body, "hello from mercato\n") << "host -> " << in->net.containerIp;
  }

  // Teardown: the bridges' rules go with them.
  on.clear();
  TearDown();
  for (const auto& b : bridges_) {
    EXPECT_TRUE(savedRulesWith(b).empty()) << ::testing::PrintToString(savedRulesWith(b));
    EXPECT_TRUE(savedRulesWith(b, true).empty()) << b;
  }
  instances_.clear();
  bridges_.clear();
}

// Another process (a restarted daemon, or a second one with the same data dir) installs the
// same bridge's rules: they are replaced, never duplicated, and removeBridge in this process
// removes whatever is there, IPv6 included.
TEST_F(NetworkTest, BridgeRulesAreReplacedAcrossProcesses) {
  std::string bridge = "mcb-" + testing::randomHex(8);
  bridges_ = {bridge};
  std::vector<std::string> taken;
  std::string subnet = freeSubnet(taken);
  auto helper = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {MERCATO_NETWORK_HELPER, "bridge-rules", bridge, subnet};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string out = runOut(argv);
    EXPECT_EQ(out, "bridge-rules: ok\n") << commandLine(argv);
  };
  const std::string egress = kEgressAllowChain, input = kInputAllowChain;
  auto allowRule = [&](const std::string& cidr) {
    return "-A " + egress + " -d " + cidr + " -i " + bridge + " -j ACCEPT";
  };
  helper({"--allow", "203.0.113.0/24", "--ns", "10.254.0.53"});
  auto first = savedRulesWith(bridge);
  helper({"--allow", "203.0.113.7/24", "--ns", "10.254.0.53"});  // the same network, spelled so
  EXPECT_EQ(savedRulesWith(bridge), first) << "a second process adds nothing";
  // NAT, 1 allow, udp+tcp 53 in both allow chains.
  EXPECT_EQ(first.size(), 6u) << ::testing::PrintToString(first);
  EXPECT_TRUE(contains(first, allowRule("203.0.113.0/24")));
  EXPECT_TRUE(
      contains(first, "-A POSTROUTING -s " + subnet + " ! -o " + bridge + " -j MASQUERADE"));
  EXPECT_TRUE(contains(first, "-A " + input + " -d 10.254.0.53/32 -i " + bridge +
                                  " -p tcp -m tcp --dport 53 -j ACCEPT"));

  helper({"--allow", "198.51.100.0/24", "--allow", "fd00:1234::/64"});
  auto second = savedRulesWith(bridge);
  EXPECT_FALSE(contains(second, allowRule("203.0.113.0/24"))) << "the old allow-list is gone";
  EXPECT_TRUE(contains(second, allowRule("198.51.100.0/24")));
  for (const auto& line : second)
    EXPECT_EQ(line.find("10.254.0.53"), std::string::npos) << "the old nameserver is gone";
  bool v6 = access("/usr/sbin/ip6tables", X_OK) == 0;
  if (v6) EXPECT_TRUE(contains(savedRulesWith(bridge, true), allowRule("fd00:1234::/64")));

  // This process's view is older than the helper's rules; removal still finds them all.
  EXPECT_TRUE(removeBridge(bridge, dir_ / "ipam").isOk());
  EXPECT_TRUE(savedRulesWith(bridge).empty()) << ::testing::PrintToString(savedRulesWith(bridge));
  if (v6) EXPECT_TRUE(savedRulesWith(bridge, true).empty());
  bridges_.clear();
}

TEST(NetworkHelpers, PolicyAndResolvConf) {
  EXPECT_TRUE(checkNetworkPolicy({"10.1.0.0/16", "fd00::/8"}, {"10.0.0.53", "fd00::53"}).isOk());
  Status bad = checkNetworkPolicy({"10.1.0.0/16", "10.2.0.0"}, {});
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("sandbox.egress.allow[1]"), std::string::npos) << bad.message();
  bad = checkNetworkPolicy({}, {"dns.example"});
  EXPECT_NE(bad.message().find("sandbox.nameservers[0]"), std::string::npos) << bad.message();
  EXPECT_FALSE(checkNetworkPolicy({"10.0.0.0/33"}, {}).isOk());
  EXPECT_FALSE(checkNetworkPolicy({"fd00::/129"}, {}).isOk());

  testing::TempDir dir;
  testing::writeFile(dir / "resolv.conf",
                     "# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\n"
                     "nameserver ::1\nnameserver fd00::53\nsearch corp.example lan\n");
  ResolvConf rc = hostResolvConf(dir / "resolv.conf");
  EXPECT_EQ(rc.nameservers, (std::vector<std::string>{"10.255.255.53", "fd00::53"}));
  EXPECT_EQ(rc.search, (std::vector<std::string>{"corp.example", "lan"}));
  testing::writeFile(dir / "stub.conf", "nameserver 127.0.0.53\n");
  EXPECT_EQ(hostResolvConf(dir / "stub.conf").nameservers,
            (std::vector<std::string>{"1.1.1.1", "8.8.8.8"}));
}

// A new machine: nothing has made /run/netns a mount point yet. Namespaces we mount there before
// `ip netns add` makes it a shared bind mount of itself end up covered by that mount and can't
// be deleted; prepareNetnsDir() does what `ip` does first. host_network_helper runs the same
// sequence in a private mount namespace with a fresh /run, with and without the fix.
TEST(NetnsDir, RaceWithIpNetnsAddOnANewMachine) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (mount namespaces)";
  if (access("/usr/sbin/ip", X_OK) != 0 && access("/usr/bin/ip", X_OK) != 0 &&
      access("/sbin/ip", X_OK) != 0)
    GTEST_SKIP() << "needs ip (apt-get install iproute2)";
  auto runMode = [](const std::string& mode) {
    ProcessSpec spec;
    spec.argv = {MERCATO_NETWORK_HELPER, "netns-race", mode};
    spec.timeout = 60s;
    auto r = runProcess(spec);
    EXPECT_TRUE(r.isOk() && r->ok())
        << mode << ": " << (r.isOk() ? r->describe() + " " + r->err : r.status().message());
    std::map<std::string, std::string> out;
    if (!r.isOk()) return out;
    for (const auto& line : split(r->out, '\n')) {
      auto colon = line.find(": ");
      if (colon != std::string::npos) out[line.substr(0, colon)] = line.substr(colon + 2);
    }
    return out;
  };
  auto fixed = runMode("fixed");
  for (const char* key : {"create a", "create b", "create c", "create d", "delete a", "delete b",
                          "delete c", "delete d"})
    EXPECT_EQ(fixed[key], "ok") << key;
  EXPECT_EQ(fixed["namespace mounts"], "4");
  EXPECT_EQ(fixed["files left"], "none");
  EXPECT_EQ(fixed["namespace mounts left"], "0");
  EXPECT_EQ(fixed["namespace mounts at exit"], "0");

  // Without the fix the first namespace, created before `ip netns add`, can't be deleted.
  auto unfixed = runMode("unfixed");
  EXPECT_EQ(unfixed["create a"], "ok");
  EXPECT_NE(unfixed["delete a"], "ok");
  EXPECT_NE(unfixed["delete a"].find("busy"), std::string::npos) << unfixed["delete a"];
  EXPECT_NE(unfixed["namespace mounts left"], "0");
  EXPECT_EQ(unfixed["namespace mounts at exit"], "0") << "the helper released them all";

  // Nothing of either run reached the host's mount namespace.
  auto names = listNetns();
  ASSERT_TRUE(names.isOk());
  for (const auto& n : *names) EXPECT_NE(n.rfind("mctrace-", 0), 0u) << n;
  EXPECT_EQ(testing::readFile("/proc/self/mountinfo").find("mctrace-"), std::string::npos);
}

}  // namespace
}  // namespace mercato::runtime::host
