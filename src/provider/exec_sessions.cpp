// ExecSessions (see exec_sessions.hpp; the wire protocol is in docs/protocols.md).
#include "provider/exec_sessions.hpp"
#include "provider/exec_messages.hpp"

#include <chrono>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/worker_pool.hpp"

namespace mercato::provider {

using nlohmann::json;

namespace {

constexpr char kStdin = 0;
constexpr char kStdout = 1;
constexpr char kStderr = 2;

json errorMessage(const Status& s) {
  return {{"type", "error"}, {"code", codeName(s.code())}, {"message", s.message()}};
}

}  // namespace

struct ExecSessions::Bridge : std::enable_shared_from_this<Bridge> {
  enum class Phase { kWaitingStart, kStarting, kRunning, kEnded };

  ExecSessions* owner = nullptr;
  std::string deployment;
  std::string publisher;
  std::shared_ptr<net::WebSocketConnection> conn;

  std::mutex mu;  // guards the fields below
  Phase phase = Phase::kWaitingStart;
  std::unique_ptr<runtime::ExecSession> session;
  std::vector<std::string> pendingStdin;  // arrived while starting
  bool pendingEof = false;
  SteadyPoint lastActivity{};
  TimerId idleTimer = 0;
  bool closed = false;  // the WebSocket ended

  void touch() {
    std::lock_guard lock(mu);
    lastActivity = owner->clock_.steadyNow();
  }

  void fail(const Status& s) {
    conn->send(errorMessage(s).dump(-1, ' ', false, json::error_handler_t::replace), false);
    conn->close(1000, std::string(codeName(s.code())));
  }

  void armIdle(Millis delay) {  // under mu
    if (closed) return;
    std::weak_ptr<Bridge> weak = weak_from_this();
    idleTimer = owner->clock_.callAfter(delay, [weak] {
      if (auto self = weak.lock()) self->onIdleTimer();
    });
  }

  void onIdleTimer() {
    std::unique_lock lock(mu);
    idleTimer = 0;
    if (closed || phase == Phase::kEnded) return;
    const Millis limit(owner->limits_.idleTimeoutMs);
    const auto idle = std::chrono::duration_cast<Millis>(owner->clock_.steadyNow() - lastActivity);
    if (idle < limit) {
      armIdle(limit - idle);
      return;
    }
    phase = Phase::kEnded;
    if (session) session->terminate();
    lock.unlock();
    spdlog::info("gateway: exec session on {} idle for {} ms: closing", deployment, idle.count());
    fail(deadlineExceeded("exec: no input or output for " +
                          std::to_string(owner->limits_.idleTimeoutMs / 1000) +
                          " s: the session is closed and its process killed"));
  }

  void onMessage(std::string data, bool binary) {
    touch();
    std::unique_lock lock(mu);
    if (phase == Phase::kEnded) return;
    if (phase == Phase::kWaitingStart) {
      if (binary) {
        phase = Phase::kEnded;
        lock.unlock();
        return fail(invalidArgument("exec: the first message must be the JSON start message"));
      }
      auto request = parseExecStart(data, owner->limits_.maxArgs);
      if (!request.isOk()) {
        phase = Phase::kEnded;
        lock.unlock();
        return fail(request.status());
      }
      request->deployment = deployment;
      phase = Phase::kStarting;
      lock.unlock();
      auto self = shared_from_this();
      if (!owner->pool_->post([self, r = std::move(request).value()] { self->start(r); })) {
        std::lock_guard relock(mu);
        phase = Phase::kEnded;
        fail(resourceExhausted("exec: the provider is busy; retry"));
      }
      return;
    }
    if (binary) {
      if (data.empty() || data[0] != kStdin) {
        phase = Phase::kEnded;
        if (session) session->terminate();
        lock.unlock();
        return fail(
            invalidArgument("exec: binary frames from the client carry stdin: channel "
                            "byte 0 followed by the data"));
      }
      data.erase(0, 1);
      if (phase == Phase::kStarting) {
        pendingStdin.push_back(std::move(data));
      } else {
        session->writeStdin(std::move(data));
      }
      return;
    }
    // A malformed control message ends the session with an error frame (it used to throw
    // inside the WebSocket callback and leave the session hanging).
    auto control = parseExecControl(data);
    if (!control.isOk()) {
      phase = Phase::kEnded;
      if (session) session->terminate();
      lock.unlock();
      return fail(control.status());
    }
    switch (control->type) {
      case ExecControl::kEof:
        if (phase == Phase::kStarting) {
          pendingEof = true;
        } else {
          session->closeStdin();
        }
        break;
      case ExecControl::kResize:
        if (phase == Phase::kRunning) (void)session->resize(control->rows, control->cols);
        break;
      case ExecControl::kTerminate:
        if (session) session->terminate();
        break;
    }
  }

  // On a worker: starts the process.
  void start(const runtime::ExecSessionRequest& request) {
    std::weak_ptr<Bridge> weak = weak_from_this();
    runtime::ExecSessionCallbacks cb;
    cb.onOutput = [weak](runtime::ExecStream stream, std::string_view data) {
      auto self = weak.lock();
      if (!self) return;
      self->touch();
      std::string frame;
      frame.reserve(data.size() + 1);
      frame.push_back(stream == runtime::ExecStream::kStderr ? kStderr : kStdout);
      frame.append(data);
      self->conn->send(std::move(frame), true);
    };
    cb.onExit = [weak](int exitCode) {
      auto self = weak.lock();
      if (!self) return;
      {
        std::lock_guard lock(self->mu);
        self->phase = Phase::kEnded;
      }
      self->conn->send(json{{"type", "exit"}, {"exitCode", exitCode}}.dump(), false);
      self->conn->close(1000, "exit " + std::to_string(exitCode));
    };
    auto session = owner->runtime_.startExec(request, std::move(cb));
    std::unique_lock lock(mu);
    if (!session.isOk()) {
      phase = Phase::kEnded;
      lock.unlock();
      return fail(session.status());
    }
    this->session = std::move(session).value();
    if (closed || phase == Phase::kEnded) {  // the client left (or idled out) meanwhile
      this->session->terminate();
      return;
    }
    phase = Phase::kRunning;
    conn->send(
        json{{"type", "started"}, {"instance", this->session->instance()}, {"tty", request.tty}}
            .dump(),
        false);
    for (auto& piece : pendingStdin) this->session->writeStdin(std::move(piece));
    pendingStdin.clear();
    if (pendingEof) this->session->closeStdin();
  }

  // On the I/O thread when the WebSocket ended: the teardown (which joins) goes to a worker.
  void onClose() {
    {
      std::lock_guard lock(mu);
      closed = true;
      if (session) session->terminate();
      if (idleTimer) owner->clock_.cancel(idleTimer);
      idleTimer = 0;
    }
    auto self = shared_from_this();
    if (!owner->pool_->post([self] { self->teardown(); })) teardownDetached(self);
  }

  void teardown() {
    std::unique_ptr<runtime::ExecSession> s;
    {
      std::lock_guard lock(mu);
      s = std::move(session);
    }
    s.reset();  // kills the process if needed and joins its thread
    owner->finished(this);
  }

  // The pool refused (it is stopping): tear down on a thread of its own.
  static void teardownDetached(const std::shared_ptr<Bridge>& self) {
    std::thread([self] { self->teardown(); }).detach();
  }
};

ExecSessions::ExecSessions(runtime::Runtime& runtime, Clock& clock, ExecLimits limits)
    : runtime_(runtime),
      clock_(clock),
      limits_(limits),
      pool_(std::make_unique<WorkerPool>(2, 1024)) {}

ExecSessions::~ExecSessions() {
  closeAll();
  pool_.reset();
}

Result<net::WebSocketCallbacks> ExecSessions::open(
    const std::string& deployment, const std::string& publisher,
    std::shared_ptr<net::WebSocketConnection> connection) {
  if (!runtime_.capabilities().execSession) {
    return unimplemented(runtime_.capabilities().backend +
                         " runtime does not support interactive exec");
  }
  auto bridge = std::make_shared<Bridge>();
  bridge->owner = this;
  bridge->deployment = deployment;
  bridge->publisher = publisher;
  bridge->conn = std::move(connection);
  {
    std::lock_guard lock(mu_);
    if (bridges_.size() >= limits_.maxSessions) {
      return resourceExhausted("exec: " + std::to_string(limits_.maxSessions) +
                               " sessions are open on this provider; retry later");
    }
    // One publisher cannot take every slot: its own sessions are capped first.
    size_t mine = 0;
    for (const auto& b : bridges_) mine += b->publisher == publisher ? 1 : 0;
    if (mine >= limits_.maxSessionsPerPublisher) {
      return resourceExhausted("exec: " + std::to_string(mine) +
                               " of your sessions are open on this provider (the limit per "
                               "publisher is " +
                               std::to_string(limits_.maxSessionsPerPublisher) +
                               "); close one or retry later");
    }
    bridges_.insert(bridge);
  }
  {
    std::lock_guard lock(bridge->mu);
    bridge->lastActivity = clock_.steadyNow();
    bridge->armIdle(Millis(limits_.idleTimeoutMs));
  }
  net::WebSocketCallbacks cb;
  cb.onMessage = [bridge](std::string data, bool binary) {
    bridge->onMessage(std::move(data), binary);
  };
  cb.onClose = [bridge] { bridge->onClose(); };
  return cb;
}

size_t ExecSessions::active() const {
  std::lock_guard lock(mu_);
  return bridges_.size();
}

void ExecSessions::finished(Bridge* bridge) {
  std::lock_guard lock(mu_);
  for (auto it = bridges_.begin(); it != bridges_.end(); ++it) {
    if (it->get() == bridge) {
      bridges_.erase(it);
      break;
    }
  }
  cv_.notify_all();
}

void ExecSessions::closeAll() {
  std::set<std::shared_ptr<Bridge>> all;
  {
    std::lock_guard lock(mu_);
    all = bridges_;
  }
  for (const auto& b : all) {
    {
      std::lock_guard lock(b->mu);
      if (b->session) b->session->terminate();
    }
    b->conn->close(1001, "provider stopping");
  }
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::seconds(15), [&] { return bridges_.empty(); })) {
    spdlog::warn("gateway: {} exec sessions did not end within 15 s", bridges_.size());
  }
}

}  // namespace mercato::provider
