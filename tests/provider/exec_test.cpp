// Interactive exec through the provider's gateway (docs/protocols.md, "Interactive exec"), on
// real components: a deployment of the sample image run by runc, the gateway over HTTPS pinned
// to the node key, and a real WebSocket client. It checks stdin in / stdout and stderr out / exit
// code with pipes, a TTY (size, resize, merged output), 403 for anyone but the owner, the bound
// on concurrent sessions (429), and the idle timeout (on the FakeClock).
// Needs root, runc and CNI: ctest label `runc`.
#include <chrono>

#include "net/websocket_client.hpp"
#include "provider_fixture.hpp"
#include "publisher/gateway_auth.hpp"

namespace mercato::provider {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using testing_support::ProviderTest;

struct Transcript {
  std::string out, err;
  std::optional<int> exitCode;
  std::optional<json> error;
};

class ExecTest : public ProviderTest {
 public:
  void configure(ProviderOptions& po) override {
    po.config.execMaxSessions = 2;
    po.config.execIdleTimeoutMs = 30'000;
  }

  // Deploys the sample app through the gateway with one instance and waits until it serves.
  std::string deployRunning() {
    std::string esc = openEscrow(*publisher_, kMicrosPerToken);
    auto owner =
        publisher::GatewayClient::create(provider_->gatewayUrl(), node_->publicKey(), *publisher_);
    EXPECT_TRUE(owner.isOk());
    // min 1: the instance stays up while the tests move the clock (idle timeout).
    std::string text = testing_support::kManifest;
    text.replace(text.find("min: 0"), 6, "min: 1");
    auto receipt = (*owner)->deploy(seal(esc, *publisher_, node_->publicKey(), app(text)),
                                    {esc, node_->address()});
    EXPECT_TRUE(receipt.isOk()) << receipt.status().message();
    if (!receipt.isOk()) return "";
    auto first = get("/d/" + receipt->deploymentId + "/");
    EXPECT_TRUE(first.isOk() && first->status == 200);
    return receipt->deploymentId;
  }

  Result<std::unique_ptr<net::WebSocketClient>> connect(const std::string& dep,
                                                        const crypto::Identity& who) {
    const std::string target = "/gateway/v1/deployments/" + dep + "/exec";
    net::ClientOptions o;
    o.pinnedKey = node_->publicKey();
    o.timeout = 10s;
    return net::WebSocketClient::connect(
        provider_->gatewayUrl(), target,
        {{"Authorization", publisher::signRequest(who, "GET", target, "", clock_.nowMillis())}}, o);
  }

  static Status start(net::WebSocketClient& ws, json start) {
    start["type"] = "start";
    RETURN_IF_ERROR(ws.send(start.dump(), false));
    ASSIGN_OR_RETURN(auto m, ws.receive(20s));
    json j = json::parse(m.data, nullptr, false);
    if (m.binary || !j.is_object() || j.value("type", "") != "started") {
      return internalError("expected the started message, got " + m.data);
    }
    return Status::ok();
  }

  static Status sendStdin(net::WebSocketClient& ws, const std::string& data) {
    return ws.send(std::string(1, '\0') + data, true);
  }

  // Reads until the connection closes (or `until` appears in stdout).
  static Transcript read(net::WebSocketClient& ws, const std::string& until = "",
                         std::chrono::milliseconds timeout = 20s) {
    Transcript t;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!until.empty() && t.out.find(until) != std::string::npos) break;
      auto m = ws.receive(200ms);
      if (!m.isOk()) {
        if (m.status().code() == Code::kDeadlineExceeded) continue;
        break;
      }
      if (m->binary) {
        if (m->data.empty()) continue;
        (m->data[0] == 2 ? t.err : t.out) += m->data.substr(1);
        continue;
      }
      json j = json::parse(m->data, nullptr, false);
      if (j.value("type", "") == "exit") t.exitCode = j.value("exitCode", -1);
      if (j.value("type", "") == "error") t.error = j;
    }
    return t;
  }
};

TEST_F(ExecTest, PipesCarryStdinOutputAndTheExitCode) {
  const std::string dep = deployRunning();
  ASSERT_FALSE(dep.empty());
  auto ws = connect(dep, *publisher_);
  ASSERT_TRUE(ws.isOk()) << ws.status().message();
  ASSERT_TRUE(start(**ws, {{"args",
                            {"/bin/sh", "-c",
                             "read line; echo got:$line; echo oops >&2; "
                             "cat; exit 3"}}})
                  .isOk());
  ASSERT_TRUE(sendStdin(**ws, "hello\n").isOk());
  ASSERT_TRUE(sendStdin(**ws, "more input\n").isOk());
  ASSERT_TRUE((*ws)->send(json{{"type", "eof"}}.dump(), false).isOk());  // ends `cat`
  Transcript t = read(**ws);
  EXPECT_THAT(t.out, HasSubstr("got:hello\n"));
  EXPECT_THAT(t.out, HasSubstr("more input\n"));
  EXPECT_EQ(t.err, "oops\n");
  ASSERT_TRUE(t.exitCode.has_value()) << t.out << t.err;
  EXPECT_EQ(*t.exitCode, 3);
  EXPECT_EQ((*ws)->closeCode(), 1000);
}

// Asks the terminal's size until it is `want` (runc applies a resize asynchronously, on
// SIGWINCH). Returns all output seen.
std::string pollSize(net::WebSocketClient& ws, const std::string& want) {
  std::string seen;
  for (int i = 0; i < 20; ++i) {
    const std::string mark = "M" + std::to_string(i);
    // The mark is split in the command so that the echoed input never matches it.
    EXPECT_TRUE(ExecTest::sendStdin(ws, "/bin/busybox stty size; echo " + mark.substr(0, 1) +
                                            "\"\"" + mark.substr(1) + "-done\n")
                    .isOk());
    // Up to the next prompt: busybox sh puts the terminal in raw mode before it prints that,
    // so input sent after it is echoed by the shell alone (typed-ahead input is echoed by the
    // terminal as well, as on any Unix terminal).
    Transcript t = ExecTest::read(ws, mark + "-done\r\n/ # ", 10s);
    seen += t.out;
    if (t.out.find(want + "\r\n") != std::string::npos) break;
  }
  return seen;
}

TEST_F(ExecTest, TtyHasItsSizeFollowsResizesAndMergesOutput) {
  const std::string dep = deployRunning();
  ASSERT_FALSE(dep.empty());
  auto ws = connect(dep, *publisher_);
  ASSERT_TRUE(ws.isOk()) << ws.status().message();
  ASSERT_TRUE(
      start(**ws, {{"args", {"/bin/sh"}}, {"tty", true}, {"rows", 30}, {"cols", 100}}).isOk());
  // The initial size is in place before the command starts: the very first answer has it.
  ASSERT_TRUE(sendStdin(**ws, "/bin/busybox stty size; echo F\"\"IRST\n").isOk());
  EXPECT_THAT(read(**ws, "FIRST\r\n/ # ").out, HasSubstr("\n30 100\r\n"));
  ASSERT_TRUE(sendStdin(**ws, "echo to-\"\"stderr >&2; echo MA\"\"RK1\n").isOk());
  Transcript merged = read(**ws, "MARK1\r\n");
  EXPECT_THAT(merged.out, HasSubstr("to-stderr\r\n"));  // a terminal has one output
  EXPECT_TRUE(merged.err.empty());
  // Input is echoed once, by the container's terminal (ours is raw).
  const std::string echoed = "echo MA\"\"RK1";
  EXPECT_EQ(merged.out.find(echoed), merged.out.rfind(echoed)) << merged.out;

  ASSERT_TRUE(
      (*ws)->send(json{{"type", "resize"}, {"rows", 40}, {"cols", 120}}.dump(), false).isOk());
  EXPECT_THAT(pollSize(**ws, "40 120"), HasSubstr("40 120\r\n"));
  ASSERT_TRUE(sendStdin(**ws, "exit 5\n").isOk());
  Transcript last = read(**ws);
  ASSERT_TRUE(last.exitCode.has_value()) << last.out;
  EXPECT_EQ(*last.exitCode, 5);
}

TEST_F(ExecTest, OnlyTheOwnerAndABoundedNumberOfSessions) {
  const std::string dep = deployRunning();
  ASSERT_FALSE(dep.empty());
  // Someone else, properly signed: 403 at the upgrade.
  auto stranger = crypto::Identity::generate();
  auto refused = connect(dep, stranger);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied) << refused.status().message();
  // No signature: 401.
  net::ClientOptions o;
  o.pinnedKey = node_->publicKey();
  auto anon = net::WebSocketClient::connect(provider_->gatewayUrl(),
                                            "/gateway/v1/deployments/" + dep + "/exec", {}, o);
  ASSERT_FALSE(anon.isOk());
  EXPECT_EQ(anon.status().code(), Code::kUnauthenticated);

  // The limit is 2 sessions: the third is refused with 429 until one ends.
  auto a = connect(dep, *publisher_);
  auto b = connect(dep, *publisher_);
  ASSERT_TRUE(a.isOk() && b.isOk());
  auto c = connect(dep, *publisher_);
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), Code::kResourceExhausted) << c.status().message();
  (*a)->close();
  (*a).reset();
  Result<std::unique_ptr<net::WebSocketClient>> d = unavailable("not tried");
  for (int i = 0; i < 50 && !d.isOk(); ++i) {
    d = connect(dep, *publisher_);
    if (!d.isOk()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(d.isOk()) << d.status().message();
}

TEST_F(ExecTest, IdleSessionsAreClosedAndTheirProcessKilled) {
  const std::string dep = deployRunning();
  ASSERT_FALSE(dep.empty());
  auto ws = connect(dep, *publisher_);
  ASSERT_TRUE(ws.isOk()) << ws.status().message();
  ASSERT_TRUE(start(**ws, {{"args", {"/bin/sh", "-c", "echo ready; sleep 600"}}}).isOk());
  Transcript ready = read(**ws, "ready\n");
  ASSERT_THAT(ready.out, HasSubstr("ready"));
  clock_.advance(31s);  // the idle limit is 30 s on the provider's clock
  Transcript t = read(**ws);
  ASSERT_TRUE(t.error.has_value()) << "no idle error; out: " << t.out;
  EXPECT_EQ((*t.error)["code"], "deadline_exceeded");
  EXPECT_TRUE((*ws)->closed());
  // The sleep is gone (the kill follows the close on the session's thread): nothing but the
  // app's own process remains in the instance.
  runtime::ExecRequest ps;
  ps.deployment = dep;
  ps.args = {"/bin/busybox", "ps"};
  std::string procs;
  for (int i = 0; i < 50; ++i) {
    auto check = provider_->runtime().exec(ps);
    ASSERT_TRUE(check.isOk()) << check.status().message();
    procs = check->stdoutText;
    if (procs.find("sleep 600") == std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_THAT(procs, ::testing::Not(HasSubstr("sleep 600")));
}

}  // namespace
}  // namespace mercato::provider
