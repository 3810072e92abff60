// Interactive exec client (see exec_session.hpp).
#include "mercato/exec_session.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "net/websocket_client.hpp"
#include "publisher/gateway_auth.hpp"

namespace mercato::cli {

using nlohmann::json;

namespace {

std::atomic<bool> gWindowChanged{false};
void onWinch(int) { gWindowChanged = true; }

// Raw mode for the local terminal while the session runs; restored by the destructor.
class RawTerminal {
 public:
  RawTerminal() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    cfmakeraw(&raw);
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

std::pair<int, int> windowSize() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
    return {ws.ws_row, ws.ws_col};
  }
  return {24, 80};
}

void writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

Result<int> runInteractiveExec(const InteractiveExec& request, const crypto::Identity& identity) {
  const std::string target = "/gateway/v1/deployments/" + request.deployment + "/exec";
  const int64_t nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  net::ClientOptions options;
  options.pinnedKey = request.nodeKey;
  options.timeout = std::chrono::seconds(15);
  ASSIGN_OR_RETURN(
      auto ws, net::WebSocketClient::connect(
                   request.gatewayUrl, target,
                   {{"Authorization", publisher::signRequest(identity, "GET", target, "", nowMs)}},
                   options));

  const auto [rows, cols] = windowSize();
  json start = {{"type", "start"}, {"args", request.args}, {"tty", request.tty}};
  if (!request.service.empty()) start["service"] = request.service;
  if (request.tty) {
    start["rows"] = rows;
    start["cols"] = cols;
    const char* term = std::getenv("TERM");
    start["env"] = json::array({std::string("TERM=") + (term && *term ? term : "xterm")});
  }
  RETURN_IF_ERROR(ws->send(start.dump(), false));
  // Until "started": a refusal (no running instance, bad args) comes back as an error message.
  for (;;) {
    ASSIGN_OR_RETURN(auto m, ws->receive(std::chrono::seconds(30)));
    if (m.binary) continue;
    json j = json::parse(m.data, nullptr, false);
    const std::string type = j.is_object() ? j.value("type", "") : "";
    if (type == "started") break;
    if (type == "error") {
      return Status(codeFromName(j.value("code", "internal")), j.value("message", "exec failed"));
    }
  }

  std::optional<RawTerminal> raw;
  struct sigaction oldWinch {};
  if (request.tty) {
    raw.emplace();
    struct sigaction sa {};
    sa.sa_handler = onWinch;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, &oldWinch);
  }
  std::atomic<bool> done{false};
  // Local stdin -> the process, until EOF (then "eof") or the session ends.
  std::thread input([&] {
    char buf[16384];
    while (!done) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int rc = ::poll(&p, 1, 100);
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) continue;
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (void)ws->send(json{{"type", "eof"}}.dump(), false);
        return;
      }
      std::string frame(1, '\0');
      frame.append(buf, static_cast<size_t>(n));
      if (!ws->send(std::move(frame), true).isOk()) return;
    }
  });

  Result<int> result = unavailable("the connection to the gateway closed before the exit code");
  for (;;) {
    if (gWindowChanged.exchange(false)) {
      const auto [r, c] = windowSize();
      (void)ws->send(json{{"type", "resize"}, {"rows", r}, {"cols", c}}.dump(), false);
    }
    auto m = ws->receive(std::chrono::milliseconds(200));
    if (!m.isOk()) {
      if (m.status().code() == Code::kDeadlineExceeded) continue;
      break;  // closed
    }
    if (m->binary) {
      if (m->data.empty()) continue;
      writeAll(m->data[0] == 2 ? STDERR_FILENO : STDOUT_FILENO,
               std::string_view(m->data).substr(1));
      continue;
    }
    json j = json::parse(m->data, nullptr, false);
    const std::string type = j.is_object() ? j.value("type", "") : "";
    if (type == "exit") {
      result = j.value("exitCode", 1);
    } else if (type == "error") {
      result = Status(codeFromName(j.value("code", "internal")), j.value("message", "exec failed"));
    }
  }
  done = true;
  input.join();
  if (request.tty) sigaction(SIGWINCH, &oldWinch, nullptr);
  raw.reset();
  return result;
}

}  // namespace mercato::cli
