// ExecSessions on a fake runtime and fake WebSocket connections (no runc): the per-publisher
// cap (issue 12, finding 10: 16 idle sessions of one publisher used to give every other tenant
// 429), and malformed client messages, which must end the session with an error frame instead
// of leaving it hanging.
#include "provider/exec_sessions.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mercato::provider {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

class FakeSession final : public runtime::ExecSession {
 public:
  const std::string& instance() const override { return instance_; }
  void writeStdin(std::string) override {}
  void closeStdin() override {}
  Status resize(uint16_t, uint16_t) override { return Status::ok(); }
  void terminate() override {}

 private:
  std::string instance_ = "web-0";
};

class FakeRuntime final : public runtime::Runtime {
 public:
  runtime::Capabilities capabilities() const override {
    runtime::Capabilities c;
    c.backend = "fake";
    c.execSession = true;
    return c;
  }
  Status deploy(const runtime::DeploymentSpec&) override { return Status::ok(); }
  Status scale(const std::string&, const std::string&, int) override { return Status::ok(); }
  Status stop(const std::string&) override { return Status::ok(); }
  Status remove(const std::string&) override { return Status::ok(); }
  Result<runtime::DeploymentStatus> status(const std::string&) override { return notFound("fake"); }
  Result<std::vector<runtime::DeploymentStatus>> list() override {
    return std::vector<runtime::DeploymentStatus>{};
  }
  Result<runtime::DeploymentStats> stats(const std::string&) override { return notFound("fake"); }
  Status logs(const std::string&, const runtime::LogOptions&, const runtime::LogSink&) override {
    return Status::ok();
  }
  Result<std::unique_ptr<runtime::ExecSession>> startExec(const runtime::ExecSessionRequest&,
                                                          runtime::ExecSessionCallbacks) override {
    return std::unique_ptr<runtime::ExecSession>(std::make_unique<FakeSession>());
  }
  Result<std::vector<runtime::RuntimeEvent>> events(uint64_t, size_t, int64_t) override {
    return std::vector<runtime::RuntimeEvent>{};
  }
};

// Records what the provider sends; close() is what the session's end looks like to a client.
class FakeConnection final : public net::WebSocketConnection {
 public:
  bool send(std::string data, bool binary) override {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    if (!binary) text_.push_back(std::move(data));
    cv_.notify_all();
    return true;
  }
  void close(int, std::string) override {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  bool closed() const override {
    std::lock_guard lock(mu_);
    return closed_;
  }
  // Waits (bounded) until a text frame of `type` arrived; returns it, or null.
  json waitFor(const std::string& type) {
    std::unique_lock lock(mu_);
    json found;
    cv_.wait_for(lock, 10s, [&] {
      for (const auto& t : text_) {
        json j = json::parse(t, nullptr, false);
        if (j.is_object() && j.value("type", "") == type) {
          found = j;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  bool waitClosed() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return closed_; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> text_;
  bool closed_ = false;
};

class ExecSessionsTest : public ::testing::Test {
 protected:
  ExecSessionsTest() {
    ExecLimits limits;
    limits.maxSessions = 6;
    limits.maxSessionsPerPublisher = 2;
    sessions_ = std::make_unique<ExecSessions>(runtime_, clock_, limits);
  }
  ~ExecSessionsTest() override {
    for (auto& [conn, cb] : open_) {
      conn->close(1000, "");
      if (cb.onClose) cb.onClose();
    }
    sessions_->closeAll();
  }
  Result<net::WebSocketCallbacks> open(const std::string& publisher,
                                       std::shared_ptr<FakeConnection>* connOut = nullptr) {
    auto conn = std::make_shared<FakeConnection>();
    auto cb = sessions_->open("dep-" + publisher, publisher, conn);
    if (cb.isOk()) open_.push_back({conn, *cb});
    if (connOut) *connOut = conn;
    return cb;
  }
  // Opens a session, starts a process and waits for "started".
  std::shared_ptr<FakeConnection> running(net::WebSocketCallbacks* cbOut) {
    std::shared_ptr<FakeConnection> conn;
    auto cb = open("alice", &conn);
    EXPECT_TRUE(cb.isOk()) << cb.status().message();
    if (!cb.isOk()) return nullptr;
    cb->onMessage(R"({"type":"start","args":["/bin/sh"]})", false);
    EXPECT_FALSE(conn->waitFor("started").is_null());
    *cbOut = *cb;
    return conn;
  }

  FakeRuntime runtime_;
  FakeClock clock_;
  std::unique_ptr<ExecSessions> sessions_;
  std::vector<std::pair<std::shared_ptr<FakeConnection>, net::WebSocketCallbacks>> open_;
};

TEST_F(ExecSessionsTest, OnePublisherCannotTakeEverySlot) {
  ASSERT_TRUE(open("alice").isOk());
  ASSERT_TRUE(open("alice").isOk());
  auto third = open("alice");
  ASSERT_FALSE(third.isOk());
  EXPECT_EQ(third.status().code(), Code::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("per publisher is 2"));
  // Everyone else still gets in, up to the provider-wide limit.
  ASSERT_TRUE(open("bob").isOk());
  ASSERT_TRUE(open("bob").isOk());
  ASSERT_TRUE(open("carol").isOk());
  ASSERT_TRUE(open("dave").isOk());
  auto full = open("erin");
  ASSERT_FALSE(full.isOk());
  EXPECT_THAT(full.status().message(), HasSubstr("6 sessions are open on this provider"));
}

TEST_F(ExecSessionsTest, AMalformedStartMessageEndsTheSessionWithAnErrorFrame) {
  struct Case {
    const char* message;
    const char* expected;
  };
  for (const Case& c : {Case{R"({"type":1})", "exec start: type: expected a string, got integer"},
                        Case{R"({"type":"start","args":["sh"],"rows":"x"})",
                             "exec start: rows: expected an integer, got string"},
                        Case{R"({"type":"start","args":[1]})", "args[0]: expected a string"},
                        Case{"not json", "not valid JSON"},
                        Case{R"({"type":"stop"})", "type: expected \"start\""}}) {
    std::shared_ptr<FakeConnection> conn;
    auto cb = open(std::string("p-") + c.message, &conn);
    ASSERT_TRUE(cb.isOk());
    cb->onMessage(c.message, false);
    json error = conn->waitFor("error");
    ASSERT_FALSE(error.is_null()) << c.message;
    EXPECT_EQ(error["code"], "invalid_argument");
    EXPECT_THAT(error["message"].get<std::string>(), HasSubstr(c.expected)) << c.message;
    EXPECT_TRUE(conn->waitClosed()) << c.message;
  }
}

TEST_F(ExecSessionsTest, AMalformedControlMessageEndsARunningSession) {
  for (const char* bad :
       {R"({"type":1})", R"({"type":"resize","rows":"x","cols":80})", "not json",
        R"({"type":"dance"})", R"([1,2])", R"({"type":"resize","rows":0,"cols":80})"}) {
    net::WebSocketCallbacks cb;
    auto conn = running(&cb);
    ASSERT_TRUE(conn);
    cb.onMessage(bad, false);
    json error = conn->waitFor("error");
    ASSERT_FALSE(error.is_null()) << bad;
    EXPECT_EQ(error["code"], "invalid_argument") << bad;
    EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("exec control")) << bad;
    EXPECT_TRUE(conn->waitClosed()) << bad;
    // Free the slot (alice may hold only 2) as the server would when the socket ends.
    cb.onClose();
    for (auto it = open_.begin(); it != open_.end(); ++it) {
      if (it->first == conn) {
        open_.erase(it);
        break;
      }
    }
    for (int i = 0; i < 100 && sessions_->active() >= 2; ++i) std::this_thread::sleep_for(10ms);
  }
}

TEST_F(ExecSessionsTest, WellFormedControlMessagesKeepTheSession) {
  net::WebSocketCallbacks cb;
  auto conn = running(&cb);
  ASSERT_TRUE(conn);
  cb.onMessage(R"({"type":"resize","rows":40,"cols":120})", false);
  cb.onMessage(R"({"type":"eof"})", false);
  EXPECT_FALSE(conn->closed());
}

TEST(ExecParseTest, StartAndControlParse) {
  auto s = parseExecStart(
      R"({"type":"start","args":["a","b"],"tty":true,"rows":5,"cols":7,"env":["A=1"]})", 8);
  ASSERT_TRUE(s.isOk()) << s.status().message();
  EXPECT_EQ(s->args.size(), 2u);
  EXPECT_TRUE(s->tty);
  EXPECT_EQ(s->rows, 5);
  EXPECT_THAT(parseExecStart(R"({"type":"start","args":["a"],"env":["=x"]})", 8).status().message(),
              HasSubstr("env[0]"));
  auto c = parseExecControl(R"({"type":"resize","rows":3,"cols":4})");
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->type, ExecControl::kResize);
  EXPECT_EQ(c->cols, 4);
}

}  // namespace
}  // namespace mercato::provider
