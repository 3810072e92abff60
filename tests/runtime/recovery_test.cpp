// Recovery of the runc backend inside a real mercatod: the daemon is SIGKILLed while its
// containers run; one container dies while the daemon is away and an orphan is planted. The
// restarted daemon re-adopts the survivor, restarts the dead one and removes the orphans.
// Needs root, runc and CNI: ctest label `runc`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/subprocess.hpp"
#include "net/client.hpp"
#include "process.hpp"
#include "runtime_fixture.hpp"

namespace mercato::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

class Admin {
 public:
  Admin(const std::string& url, const std::string& dataDir) {
    std::ifstream in(dataDir + "/admin.token");
    std::getline(in, token_);
    auto c = net::HttpClient::create(url, net::ClientOptions::withTimeout(60'000ms));
    if (c.isOk()) client_ = std::move(*c);
  }
  Result<json> call(const std::string& method, const std::string& target,
                    const json& body = nullptr) {
    net::Headers h{{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}};
    ASSIGN_OR_RETURN(auto r,
                     client_->request(method, target, body.is_null() ? "" : body.dump(), h));
    if (r.status >= 300) return net::statusFromErrorResponse(r.status, r.body);
    return json::parse(r.body);
  }
  net::HttpClient& client() { return *client_; }

 private:
  std::string token_;
  std::unique_ptr<net::HttpClient> client_;
};

bool answers(const std::string& ip) {
  auto c =
      net::HttpClient::create("http://" + ip + ":8080", net::ClientOptions::withTimeout(3000ms));
  if (!c.isOk()) return false;
  auto r = (*c)->request("GET", "/");
  return r.isOk() && r->status == 200;
}

json waitFor(Admin& a, const std::string& dep, const std::function<bool(const json&)>& pred) {
  json st;
  for (int i = 0; i < 400; ++i) {
    auto r = a.call("GET", "/runtime/v1/deployments/" + dep);
    if (r.isOk()) {
      st = *r;
      if (pred(st)) return st;
    }
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "condition never held; last status: " << st.dump();
  return st;
}

TEST(RuntimeRecoveryTest, KillNineThenReadoptRestartAndRemoveOrphans) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (runc, network namespaces, cgroups)";
  testing_support::SampleEnvironment env;
  ASSERT_TRUE(env.ok()) << env.error();
  std::string dir = testing_support::makeTempDir("mct-recover");
  std::string cfg = dir + "/node.yaml";
  std::ofstream(cfg) << "roles:\n  ledgerHost: false\n  runtime: true\n"
                     << "runtime:\n  subnetPool: " << testing_support::uniqueSubnetPool()
                     << "\n  sampleIntervalMs: 200\n";
  std::string data = dir + "/data";
  std::vector<std::string> args = {"--config", cfg};  // DaemonProcess adds --data-dir, --listen
  // On any exit (a failed ASSERT too), after the daemons below are gone: nothing may outlive
  // the test, neither containers nor the deployment's bridge and NAT rules.
  struct Cleanup {
    std::string runtimeDir;
    ~Cleanup() {
      std::string errors = testing_support::removeAllDeployments(runtimeDir);
      EXPECT_EQ(errors, "") << "cleaning up " << runtimeDir;
    }
  } cleanup{data + "/runtime"};

  testing::DaemonProcess d1(MERCATOD_PATH, data, args);
  ASSERT_TRUE(d1.start());
  Admin a1(d1.url(), data);
  json spec = {{"id", "shop"},
               {"services", {{{"name", "web"}, {"image", env.sampleRef()}, {"replicas", 2}}}}};
  // Unauthenticated callers are refused.
  auto anon = a1.client().request("GET", "/runtime/v1/deployments");
  ASSERT_TRUE(anon.isOk());
  EXPECT_EQ(anon->status, 401);

  auto created = a1.call("POST", "/runtime/v1/deployments", spec);
  ASSERT_TRUE(created.isOk()) << created.status().message();
  auto ready2 = [](const json& st) { return st["services"][0]["ready"] == 2; };
  json st = waitFor(a1, "shop", ready2);
  std::string ip0 = st["services"][0]["instances"][0]["ip"];
  std::string ip1 = st["services"][0]["instances"][1]["ip"];
  int64_t started0 = st["services"][0]["instances"][0]["startedAtMs"];
  ASSERT_TRUE(answers(ip0));
  ASSERT_TRUE(answers(ip1));

  d1.kill9();
  // While the daemon is away: web.1's container dies, and orphans appear.
  std::string runcRoot = data + "/runtime/runc";
  ProcessSpec list;
  list.argv = {"runc", "--root", runcRoot, "list", "-q"};
  auto ids = runProcess(list);
  ASSERT_TRUE(ids.isOk());
  std::string victim;
  {
    std::istringstream in(ids->out);
    for (std::string id; std::getline(in, id);)
      if (id.find("-shop-web-1-") != std::string::npos) victim = id;
  }
  ASSERT_FALSE(victim.empty()) << ids->out;
  ProcessSpec kill;
  kill.argv = {"runc", "--root", runcRoot, "kill", victim, "KILL"};
  ASSERT_TRUE(runProcess(kill).isOk());
  std::string prefix = testing_support::prefixOf(data + "/runtime");
  std::string orphanNs = prefix + "-orphan-ns";
  ProcessSpec addNs;
  addNs.argv = {"ip", "netns", "add", orphanNs};
  ASSERT_TRUE(runProcess(addNs)->ok());
  std::string orphanDir = data + "/runtime/instances/" + prefix + "-orphan-dir";
  fs::create_directories(orphanDir + "/rootfs");
  // A bridge, with its NAT rule and IPAM dir, of a deployment the state no longer has (a crash
  // in the middle of its removal).
  std::string orphanBridge = testing_support::bridgeOf(data + "/runtime", "gone");
  std::string orphanNet = "10.88." + std::to_string(::getpid() % 250) + ".0/24";
  ProcessSpec addBridge;
  addBridge.argv = {"ip", "link", "add", orphanBridge, "type", "bridge"};
  ASSERT_TRUE(runProcess(addBridge)->ok());
  ProcessSpec addNat;
  addNat.argv = {"iptables", "-w", "-t", "nat",        "-A", "POSTROUTING", "-s",
                 orphanNet,  "!",  "-o", orphanBridge, "-j", "MASQUERADE"};
  ASSERT_TRUE(runProcess(addNat)->ok());
  fs::create_directories(data + "/runtime/cni/" + orphanBridge);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(answers(ip0)) << "containers must outlive the daemon";

  testing::DaemonProcess d2(MERCATOD_PATH, data, args);
  ASSERT_TRUE(d2.start());
  Admin a2(d2.url(), data);
  st = waitFor(a2, "shop", [](const json& s) {
    return s["services"][0]["ready"] == 2 && s["services"][0]["instances"][1]["restarts"] >= 1;
  });
  EXPECT_EQ(st["services"][0]["instances"][0]["startedAtMs"], started0) << "web.0 re-adopted";
  EXPECT_EQ(st["services"][0]["instances"][0]["restarts"], 0);
  EXPECT_TRUE(answers(ip0));
  EXPECT_TRUE(answers(st["services"][0]["instances"][1]["ip"].get<std::string>()));
  auto snap = testing_support::HostSnapshot::take();
  EXPECT_FALSE(snap.mentions(orphanNs));
  EXPECT_FALSE(fs::exists(orphanDir));
  EXPECT_FALSE(snap.mentions(orphanBridge)) << "the orphan bridge and its NAT rule are removed";
  EXPECT_FALSE(fs::exists(data + "/runtime/cni/" + orphanBridge));
  std::string shopBridge = testing_support::bridgeOf(data + "/runtime", "shop");
  EXPECT_TRUE(snap.mentions(shopBridge)) << "the live deployment keeps its bridge";
  auto evs = a2.call("GET", "/runtime/v1/events?after=0&limit=1000");
  ASSERT_TRUE(evs.isOk());
  std::set<std::string> types;
  for (const auto& e : *evs) types.insert(e["type"].get<std::string>());
  EXPECT_TRUE(types.count("adopted"));
  EXPECT_TRUE(types.count("orphan-removed"));
  EXPECT_TRUE(types.count("restarting"));

  ASSERT_TRUE(a2.call("DELETE", "/runtime/v1/deployments/shop").isOk());
  EXPECT_EQ(d2.terminate(), 0);
  auto after = testing_support::HostSnapshot::take();
  EXPECT_FALSE(after.mentions(prefix));
  EXPECT_FALSE(after.mentions(shopBridge)) << "the bridge and its rules go with the deployment";
  EXPECT_THAT(after.leftoversOf(data + "/runtime"), ::testing::IsEmpty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mercato::runtime
