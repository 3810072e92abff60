// RuncRuntime, exec: commands inside a running instance through `runc exec`, either run to
// completion with captured output (exec) or interactive with stdin attached (startExec).
//
// Interactive sessions run `runc exec` in the foreground under an InteractiveProcess: with
// pipes, runc hands them to the process as its stdio; with a TTY, runc gets a pseudo-terminal
// of ours as its stdio, allocates the container-side console itself and relays between the two
// (resizing the container's console when ours is resized). `--pid-file` gives the process's
// host pid, so terminate() kills the process itself and runc then exits with its status.
//
// A TTY session passes the whole process as `--process` JSON (the container's own process with
// our args, env and consoleSize): runc applies consoleSize before it execs the command, while
// its relay sets the size only after the start, so a command that asks at once (`stty size`, a
// full-screen program) would otherwise see a 0x0 terminal.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "runtime/runc/host/interactive_process.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/runc_internal.hpp"
#include "runtime/runc/runc_runtime.hpp"

namespace mercato::runtime::runc {

namespace {

std::string newPidFile() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return "/tmp/mercato-exec-" + std::to_string(getpid()) + "-" + std::to_string(rng()) + ".pid";
}

pid_t readPidFile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// SIGKILLs `root` and every process below it. Killing only the exec'd process would leave its
// children (a shell's `sleep &`, a pipeline) reparented to the container's init, running on.
void killTree(pid_t root) {
  std::multimap<pid_t, pid_t> children;  // parent -> child, from /proc/<pid>/stat
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) continue;
    // After "pid (comm)": " S ppid ..."
    const long ppid = std::strtol(stat.c_str() + close + 4, nullptr, 10);
    children.emplace(static_cast<pid_t>(ppid), static_cast<pid_t>(std::stol(name)));
  }
  std::vector<pid_t> todo{root}, all;
  while (!todo.empty() && all.size() < 4096) {
    const pid_t p = todo.back();
    todo.pop_back();
    all.push_back(p);
    auto [first, last] = children.equal_range(p);
    for (auto it = first; it != last; ++it) todo.push_back(it->second);
  }
  for (pid_t p : all) ::kill(p, SIGKILL);
  spdlog::info("runtime: exec: killed pid {} and {} processes below it", root, all.size() - 1);
}

// The container's process (from its bundle's config.json) with the session's command, env and
// terminal size, for `runc exec --process`. Env entries replace same-named ones.
Status writeTtyProcess(const std::string& bundleDir, const ExecSessionRequest& request,
                       const std::string& path) {
  std::ifstream in(bundleDir + "/config.json");
  auto spec = nlohmann::json::parse(in, nullptr, false);
  if (spec.is_discarded() || !spec.contains("process") || !spec["process"].is_object())
    return internalError("exec: " + bundleDir + "/config.json has no process");
  nlohmann::json p = spec["process"];
  p["args"] = request.args;
  p["terminal"] = true;
  p["consoleSize"] = {{"height", request.rows}, {"width", request.cols}};
  std::vector<std::string> env = p.value("env", std::vector<std::string>{});
  auto set = [&](const std::string& entry) {
    const std::string key = entry.substr(0, entry.find('=') + 1);
    std::erase_if(env, [&](const std::string& e) { return e.rfind(key, 0) == 0; });
    env.push_back(entry);
  };
  set("TERM=xterm");
  for (const auto& e : request.env) set(e);
  p["env"] = env;
  std::ofstream out(path, std::ios::trunc);
  out << p.dump();
  out.close();
  if (!out) return internalError("exec: cannot write " + path);
  return Status();
}

class RuncExecSession final : public ExecSession {
 public:
  RuncExecSession(std::string instance, std::string pidFile)
      : instance_(std::move(instance)), pidFile_(std::move(pidFile)) {}
  ~RuncExecSession() override {
    process_.reset();  // terminates and joins: no callback runs after this
    unlink(pidFile_.c_str());
    unlink((pidFile_ + ".process.json").c_str());
  }
  void attach(std::unique_ptr<host::InteractiveProcess> p) { process_ = std::move(p); }

  const std::string& instance() const override { return instance_; }
  void writeStdin(std::string data) override { process_->write(std::move(data)); }
  void closeStdin() override { process_->closeInput(); }
  Status resize(uint16_t rows, uint16_t cols) override { return process_->resize(rows, cols); }
  void terminate() override { process_->terminate(); }

 private:
  std::string instance_;
  std::string pidFile_;
  std::unique_ptr<host::InteractiveProcess> process_;
};

}  // namespace

Result<RuncRuntime::ExecTarget> RuncRuntime::execTarget(const std::string& deployment,
                                                        const std::string& service,
                                                        const std::string& instance) {
  auto d = findDeployment(deployment);
  if (!d) return notFound("no deployment " + deployment);
  std::string which;
  for (auto& inst : instancesOf(deployment)) {
    if (!instance.empty() ? inst->row.id != instance
                          : (!service.empty() && inst->row.service != service)) {
      continue;
    }
    which = inst->row.id;
    if (inst->row.state == "running")
      return ExecTarget{inst->row.containerId, inst->row.id, inst->row.dir};
  }
  return failedPrecondition("exec: no running instance" +
                            (which.empty() ? std::string(" matches") : " (" + which + ")") +
                            " in deployment " + deployment);
}

Result<ExecResult> RuncRuntime::exec(const ExecRequest& request) {
  if (request.args.empty()) return invalidArgument("exec: args must not be empty");
  ASSIGN_OR_RETURN(ExecTarget target,
                   execTarget(request.deployment, request.service, request.instance));
  host::ExecOptions eo;
  eo.args = request.args;
  eo.timeout = request.timeout;
  auto ran = runc_->exec(target.containerId, eo);
  if (!ran.isOk()) return forTenant(ran.status());
  auto& r = *ran;
  if (r.timedOut) {
    return deadlineExceeded("exec: timed out after " + std::to_string(request.timeout.count()) +
                            " ms");
  }
  ExecResult out;
  out.exitCode = r.exitCode;
  out.stdoutText = std::move(r.stdoutData);
  out.stderrText = std::move(r.stderrData);
  // runc's own failure (exit 255, its log format on stderr) names host paths.
  if (out.exitCode == 255 && out.stderrText.find("level=error") != std::string::npos)
    out.stderrText = forTenant(std::move(out.stderrText));
  return out;
}

Result<std::unique_ptr<ExecSession>> RuncRuntime::startExec(const ExecSessionRequest& request,
                                                            ExecSessionCallbacks callbacks) {
  if (request.args.empty()) return invalidArgument("exec: args must not be empty");
  if (request.tty && (request.rows == 0 || request.cols == 0)) {
    return invalidArgument("exec: a terminal needs rows and cols above 0");
  }
  ASSIGN_OR_RETURN(ExecTarget target,
                   execTarget(request.deployment, request.service, request.instance));
  const std::string pidFile = newPidFile();
  host::InteractiveOptions o;
  o.argv = runc_->baseArgs();
  o.argv.insert(o.argv.end(), {"exec", "--pid-file", pidFile});
  if (request.tty) {
    const std::string processFile = pidFile + ".process.json";
    if (Status s = writeTtyProcess(target.bundleDir, request, processFile); !s.isOk()) {
      unlink(processFile.c_str());
      return forTenant(s);
    }
    o.argv.insert(o.argv.end(), {"--tty", "--process", processFile, target.containerId});
  } else {
    for (const auto& e : request.env) o.argv.insert(o.argv.end(), {"--env", e});
    o.argv.push_back(target.containerId);
    o.argv.insert(o.argv.end(), request.args.begin(), request.args.end());
  }
  o.tty = request.tty;
  o.rows = request.rows;
  o.cols = request.cols;
  o.onOutput = [cb = callbacks.onOutput](int fd, std::string_view data) {
    if (cb) cb(fd == 2 ? ExecStream::kStderr : ExecStream::kStdout, data);
  };
  o.onExit = std::move(callbacks.onExit);
  o.rawTerminal = true;  // runc relays to the container's console, which does echo and editing
  o.onTerminate = [pidFile](pid_t runcPid) {
    // runc writes the pid file just after the process started, so a session ended at once (an
    // idle close right after the first output, a client that left) may come before it. Killing
    // runc instead would leave the process running in the container: wait for it a little.
    pid_t p = readPidFile(pidFile);
    for (int i = 0; p <= 0 && i < 200 && ::kill(runcPid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      p = readPidFile(pidFile);
    }
    if (p > 0) {
      killTree(p);  // runc exec then exits with 137
    } else {
      spdlog::info("runtime: exec: no pid in {} yet: killing runc {}", pidFile, runcPid);
      ::kill(runcPid, SIGKILL);  // not started yet
    }
  };
  auto session = std::make_unique<RuncExecSession>(target.instanceId, pidFile);
  auto started = host::InteractiveProcess::start(std::move(o));
  if (!started.isOk()) return forTenant(started.status());
  auto process = std::move(*started);
  session->attach(std::move(process));
  return std::unique_ptr<ExecSession>(std::move(session));
}

}  // namespace mercato::runtime::runc
