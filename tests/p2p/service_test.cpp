// The p2p service on real UDP sockets on loopback (SystemClock, short periods): discovery over
// the transport, records and summaries, private networks, bad input against a running node, a
// restart, and the /p2p/v1 HTTP API.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include "net/client.hpp"
#include "net/server.hpp"
#include "p2p/identity_record.hpp"
#include "p2p/service.hpp"

namespace mercato::p2p {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Polls `pred` every 20 ms for at most `limit`.
template <typename Pred>
bool waitFor(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mercato-p2p-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct TestNode {
  crypto::Identity id = crypto::Identity::generate();
  std::unique_ptr<P2pService> svc;
};

class P2pServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { crypto::initCrypto(); }

  P2pConfig config(const std::string& name, std::vector<std::string> initial = {}) {
    P2pConfig c;
    c.transport.listen = "127.0.0.1:0";
    c.initialNodes = std::move(initial);
    c.maxPingMs = 50;
    c.pingPeriodMs = 100;
    c.pingTimeoutMs = 60;
    c.summaryPeriodMs = 500;
    c.dataDir = dir_.sub(name);
    c.defaultName = name;
    c.roles = {"p2p"};
    c.localSummary = [name] { return nlohmann::json{{"arch", "x86_64"}, {"who", name}}; };
    return c;
  }

  TestNode& start(P2pConfig c) {
    auto n = std::make_unique<TestNode>();
    auto svc = P2pService::create(std::move(c), n->id, systemClock(), nullptr);
    EXPECT_TRUE(svc.isOk()) << svc.status().toString();
    n->svc = std::move(svc.value());
    EXPECT_TRUE(n->svc->start().isOk());
    nodes_.push_back(std::move(n));
    return *nodes_.back();
  }

  static std::set<std::string> peerIds(P2pService& s, std::optional<std::string> net = {}) {
    std::set<std::string> out;
    auto peers = s.peersJson(net);
    if (!peers.isOk()) return out;
    for (const auto& p : *peers) out.insert(p["peerId"].get<std::string>());
    return out;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<TestNode>> nodes_;
};

TEST_F(P2pServiceTest, NodesFindEachOtherAndExchangeRecordsAndSummaries) {
  TestNode& a = start(config("alpha"));
  TestNode& b = start(config("beta", {a.svc->endpoint()}));  // endpoint only: bootstrap ping
  TestNode& c = start(config("gamma", {a.svc->peerId() + "@" + a.svc->endpoint()}));
  // Everybody learns everybody (c learns b through a's gossip).
  ASSERT_TRUE(waitFor([&] {
    return peerIds(*a.svc).size() == 2 && peerIds(*b.svc).size() == 2 &&
           peerIds(*c.svc).size() == 2;
  })) << a.svc->statsJson().dump();
  // Records and summaries arrive.
  ASSERT_TRUE(waitFor([&] {
    auto n = c.svc->nodeJson(b.svc->peerId());
    return n.isOk() && !(*n)["summary"].is_null() && !(*n)["record"].is_null();
  }));
  auto n = *c.svc->nodeJson(b.svc->peerId());
  EXPECT_EQ(n["record"]["name"], "beta");
  EXPECT_EQ(n["summary"]["who"], "beta");
  EXPECT_EQ(n["networks"][0]["network"], "public");
  auto peers = *a.svc->peersJson(std::nullopt);
  EXPECT_EQ(peers[0]["networks"][0], "public");
  EXPECT_GT(peers[0]["rttMicros"].get<int64_t>(), 0);

  // A new name reaches the peers, and it survives a restart of the state file.
  ASSERT_TRUE(b.svc->setName("beta-2").isOk());
  EXPECT_TRUE(waitFor([&] {
    auto r = a.svc->nodeJson(b.svc->peerId());
    return r.isOk() && (*r)["record"]["name"] == "beta-2";
  }));
  EXPECT_FALSE(a.svc->nodeJson("mpeer1nothing").isOk());
  EXPECT_EQ(a.svc->peersJson("nosuch").status().code(), Code::kNotFound);

  // A stopped node disappears from its peers' lists.
  const std::string gone = c.svc->peerId();
  c.svc->stop();
  EXPECT_TRUE(
      waitFor([&] { return !peerIds(*a.svc).count(gone) && !peerIds(*b.svc).count(gone); }, 3s));
  EXPECT_EQ(a.svc->nodeJson(gone).status().code(), Code::kNotFound);
}

TEST_F(P2pServiceTest, PrivateNetworkPeersAreInvisibleWithoutTheKey) {
  auto cfgA = config("a");
  cfgA.publicNetwork = false;
  TestNode& a = start(cfgA);
  auto created = a.svc->createNetwork("partners");
  ASSERT_TRUE(created.isOk()) << created.status().toString();
  const std::string key = (*created)["key"];

  auto cfgB = config("b", {a.svc->endpoint()});
  cfgB.publicNetwork = false;
  cfgB.networkKeys = {key};
  TestNode& b = start(cfgB);
  // An outsider that knows a's address and is in the public network only, and one with
  // another key under the same name.
  TestNode& outsider = start(config("outsider", {a.svc->endpoint(), b.svc->endpoint()}));
  auto cfgW = config("wrong", {a.svc->endpoint(), b.svc->endpoint()});
  cfgW.publicNetwork = false;
  cfgW.networkKeys = {Network::createPrivate("partners")->keyText()};
  TestNode& wrong = start(cfgW);

  ASSERT_TRUE(waitFor([&] {
    return peerIds(*a.svc, "partners").count(b.svc->peerId()) &&
           peerIds(*b.svc, "partners").count(a.svc->peerId());
  }));
  std::this_thread::sleep_for(600ms);  // several rounds for anything to leak
  EXPECT_TRUE(peerIds(*outsider.svc).empty());
  EXPECT_TRUE(peerIds(*wrong.svc).empty());
  EXPECT_EQ(peerIds(*a.svc), std::set<std::string>{b.svc->peerId()});
  EXPECT_EQ(peerIds(*b.svc), std::set<std::string>{a.svc->peerId()});
  EXPECT_GT(a.svc->transport().dropped(DropReason::kUnknownNetwork), 0u);

  // Networks persist: the state file is 0600 and holds the key.
  const auto state = fs::path(cfgA.dataDir) / "state.json";
  EXPECT_EQ(fs::status(state).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto nets = a.svc->networksJson();
  ASSERT_EQ(nets.size(), 1u);
  EXPECT_EQ(nets[0]["name"], "partners");
  EXPECT_TRUE(nets[0]["private"].get<bool>());
  EXPECT_EQ(a.svc->joinNetwork(key).status().code(), Code::kAlreadyExists);
  ASSERT_TRUE(a.svc->leaveNetwork("partners").isOk());
  EXPECT_TRUE(a.svc->networksJson().empty());
  EXPECT_EQ(a.svc->leaveNetwork("partners").code(), Code::kNotFound);
}

// An attacker with its own socket sends crafted datagrams at a running node.
TEST_F(P2pServiceTest, BadInputIsDroppedAndCountedAndTheNodeKeepsWorking) {
  TestNode& node = start(config("target"));
  UdpTransport& t = node.svc->transport();
  const std::string target = node.svc->endpoint();

  crypto::Identity evil = crypto::Identity::fromSeed(std::array<uint8_t, 32>{7}).value();
  auto attacker = UdpTransport::create({}, evil, systemClock(), nullptr).value();
  std::atomic<int> pongs{0};
  attacker->setHandler([&](const Network&, Message&& m, const std::string&) {
    if (m.type == MsgType::kPong && m.nonce == 4242) ++pongs;
  });
  attacker->start();
  const Network pub = Network::publicNetwork();
  auto onAttacker = [&](std::function<void()> fn) {
    std::promise<void> done;
    attacker->post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  };
  onAttacker([&] { attacker->addNetwork(pub); });
  auto sealed = [&](Message m, uint64_t seq) {
    m.seq = seq;
    m.timeMs = systemClock().nowMillis();
    return sealPacket(pub, evil, std::move(m)).value();
  };
  auto record = [&](uint64_t seq) {
    IdentityRecord r;
    r.seq = seq;
    r.name = "evil";
    EXPECT_TRUE(r.sign(evil).isOk());
    Message m;
    m.type = MsgType::kRecord;
    m.record = r.encode();
    return m;
  };
  Message ping;
  ping.type = MsgType::kPing;
  ping.nonce = 1;
  const std::string validPing = sealed(ping, 1000);
  std::string badSig = sealed(ping, 1001);
  badSig[badSig.size() - 1] ^= 0x55;

  onAttacker([&] {
    (void)attacker->sendRaw(target, "\x01\x02 definitely not a packet");
    (void)attacker->sendRaw(target, badSig);
    (void)attacker->sendRaw(target, std::string(kMaxPacketBytes + 100, 'z'));
    (void)attacker->sendRaw(target, validPing);
    (void)attacker->sendRaw(target, validPing);  // the same datagram again
    (void)attacker->sendRaw(target, sealed(record(5), 1002));
    (void)attacker->sendRaw(target, sealed(record(3), 1003));  // an older record, fresh message
    (void)attacker->sendRaw(target, sealPacket(*Network::createPrivate("x"), evil, ping).value());
  });
  EXPECT_TRUE(waitFor([&] {
    return t.dropped(DropReason::kMalformed) == 1 && t.dropped(DropReason::kBadSignature) == 1 &&
           t.dropped(DropReason::kOversized) == 1 && t.dropped(DropReason::kReplayed) == 2 &&
           t.dropped(DropReason::kUnknownNetwork) == 1;
  })) << node.svc->statsJson().dump();
  EXPECT_EQ(t.dropped(DropReason::kRateLimited), 0u);

  // Still working: a fresh ping is answered.
  ping.nonce = 4242;
  onAttacker([&] { (void)attacker->sendRaw(target, sealed(ping, 2000)); });
  EXPECT_TRUE(waitFor([&] { return pongs.load() == 1; }));
  attacker->stop();
}

TEST_F(P2pServiceTest, AFloodFromOneSourceIsRateLimited) {
  auto cfg = config("target");
  cfg.transport.ratePerSec = 5;
  cfg.transport.burst = 10;
  TestNode& node = start(cfg);
  crypto::Identity sender = crypto::Identity::generate();
  auto flood = UdpTransport::create({}, sender, systemClock(), nullptr).value();
  flood->start();
  const std::string target = node.svc->endpoint();
  std::promise<void> done;
  flood->post([&] {
    flood->addNetwork(Network::publicNetwork());
    for (int i = 0; i < 50; ++i) {
      Message m;
      m.type = MsgType::kPing;
      m.nonce = static_cast<uint64_t>(i);
      (void)flood->send(Network::publicNetwork(), target, m);
    }
    done.set_value();
  });
  done.get_future().wait();
  UdpTransport& t = node.svc->transport();
  EXPECT_TRUE(waitFor([&] { return t.dropped(DropReason::kRateLimited) >= 35; }))
      << node.svc->statsJson().dump();
  EXPECT_LE(t.accepted(), 15u);
  flood->stop();
}

}  // namespace
}  // namespace mercato::p2p

namespace mercato::p2p {
namespace {

// A restart keeps the name, the networks and the key, signs a newer record, and the peers that
// knew the node accept it again (its message sequence keeps counting upwards).
TEST_F(P2pServiceTest, ARestartedNodeKeepsItsNetworksAndIsAcceptedAgain) {
  TestNode& a = start(config("a"));
  TestNode& b = start(config("b", {a.svc->endpoint()}));
  auto created = b.svc->createNetwork("team");
  ASSERT_TRUE(created.isOk());
  ASSERT_TRUE(a.svc->joinNetwork((*created)["key"]).isOk());
  ASSERT_TRUE(b.svc->setName("bee").isOk());
  ASSERT_TRUE(waitFor([&] { return peerIds(*a.svc, "team").count(b.svc->peerId()) == 1; }));
  const uint64_t seqBefore = b.svc->identityJson()["seq"];
  const std::string endpoint = b.svc->endpoint();
  b.svc->stop();
  ASSERT_TRUE(waitFor([&] { return peerIds(*a.svc).empty(); }, 5s));

  auto cfg = config("b", {a.svc->endpoint()});
  cfg.transport.listen = endpoint;  // same address, as a restarted daemon would have
  auto again = P2pService::create(cfg, b.id, systemClock(), nullptr);
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  b.svc = std::move(again.value());
  ASSERT_TRUE(b.svc->start().isOk());
  auto ident = b.svc->identityJson();
  EXPECT_EQ(ident["name"], "bee");
  EXPECT_GT(ident["seq"].get<uint64_t>(), seqBefore);
  auto nets = b.svc->networksJson();
  ASSERT_EQ(nets.size(), 2u);
  EXPECT_EQ(nets[1]["name"], "team");
  EXPECT_TRUE(waitFor([&] {
    return peerIds(*a.svc, "team").count(b.svc->peerId()) == 1 &&
           peerIds(*a.svc, "public").count(b.svc->peerId()) == 1;
  }));
  EXPECT_EQ(a.svc->transport().dropped(DropReason::kReplayed), 0u);
}

}  // namespace
}  // namespace mercato::p2p

namespace mercato::p2p {
namespace {

// The /p2p/v1 routes on a real HTTP server: reads are open, changes need the admin token.
TEST_F(P2pServiceTest, HttpApiNeedsTheAdminTokenForChanges) {
  TestNode& a = start(config("api"));
  net::Router router;
  a.svc->registerRoutes(router, "s3cret");
  auto server = net::HttpServer::create({}, std::move(router));
  ASSERT_TRUE(server.isOk());
  (*server)->start();
  auto client = net::HttpClient::create((*server)->url()).value();
  auto get = [&](const std::string& target) { return client->request("GET", target).value(); };
  auto post = [&](const std::string& target, const nlohmann::json& body, bool admin) {
    net::Headers h;
    if (admin) h["Authorization"] = "Bearer s3cret";
    return client->request("POST", target, body.dump(), h).value();
  };

  auto ident = get("/p2p/v1/identity");
  EXPECT_EQ(ident.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ident.body)["peerId"], a.svc->peerId());
  EXPECT_EQ(post("/p2p/v1/identity", {{"name", "x"}}, false).status, 401);
  net::Headers wrong{{"Authorization", "Bearer nope"}};
  EXPECT_EQ(client->request("POST", "/p2p/v1/networks", R"({"name":"n"})", wrong)->status, 401);
  EXPECT_EQ(client->request("DELETE", "/p2p/v1/networks/public")->status, 401);

  auto named = post("/p2p/v1/identity", {{"name", "api-2"}}, true);
  EXPECT_EQ(named.status, 200) << named.body;
  EXPECT_EQ(nlohmann::json::parse(named.body)["name"], "api-2");
  EXPECT_EQ(post("/p2p/v1/identity", {{"name", std::string(65, 'x')}}, true).status, 400);
  EXPECT_EQ(post("/p2p/v1/identity", {{"nom", "x"}}, true).status, 400);

  auto created = post("/p2p/v1/networks", {{"name", "team"}}, true);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string key = nlohmann::json::parse(created.body)["key"];
  EXPECT_EQ(post("/p2p/v1/networks", {{"key", key}}, true).status, 409);
  EXPECT_EQ(post("/p2p/v1/networks", {{"key", key.substr(0, 20)}}, true).status, 400);
  EXPECT_EQ(post("/p2p/v1/networks", {{"name", "Bad Name"}}, true).status, 400);
  // Listing never shows keys.
  auto nets = get("/p2p/v1/networks");
  EXPECT_EQ(nets.body.find(key), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(nets.body).size(), 2u);

  EXPECT_EQ(get("/p2p/v1/peers").status, 200);
  EXPECT_EQ(get("/p2p/v1/peers?network=team").status, 200);
  EXPECT_EQ(get("/p2p/v1/peers?network=nope").status, 404);
  EXPECT_EQ(get("/p2p/v1/nodes/mpeer1bad").status, 400);
  EXPECT_EQ(get("/p2p/v1/nodes/" + peerIdFromKey(crypto::Identity::generate().publicKey())).status,
            404);
  auto self = get("/p2p/v1/nodes/" + a.svc->peerId());
  EXPECT_EQ(nlohmann::json::parse(self.body)["summary"]["who"], "api");

  net::Headers adminH{{"Authorization", "Bearer s3cret"}};
  EXPECT_EQ(client->request("DELETE", "/p2p/v1/networks/team", "", adminH)->status, 200);
  EXPECT_EQ(client->request("DELETE", "/p2p/v1/networks/team", "", adminH)->status, 404);
  auto stats = nlohmann::json::parse(get("/p2p/v1/stats").body);
  EXPECT_TRUE(stats["dropped"].contains("bad_signature"));
  (*server)->stop();
}

}  // namespace
}  // namespace mercato::p2p
