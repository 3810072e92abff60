#include "runtime/runc/host/runc.hpp"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "common/strings.hpp"
#include "common/subprocess.hpp"

namespace mercato::runtime::host {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<RuncContainerState> stateFromJson(const json& j) {
  if (!j.is_object()) return internalError("runc state: expected a JSON object");
  RuncContainerState s;
  s.id = str(j, "id");
  if (s.id.empty()) return internalError("runc state: missing \"id\"");
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer()) {
    auto pid = it->get<int64_t>();
    if (pid < 0 || pid > INT32_MAX) return internalError("runc state: pid out of range");
    s.pid = static_cast<int>(pid);
  }
  s.status = str(j, "status");
  s.bundle = str(j, "bundle");
  s.rootfs = str(j, "rootfs");
  s.created = str(j, "created");
  s.owner = str(j, "owner");
  return s;
}

Result<ProcessResult> runRunc(const std::vector<std::string>& argv, int timeoutSeconds) {
  ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = std::chrono::seconds(timeoutSeconds);
  return runProcess(spec);
}

bool notExistError(const ProcessResult& r) {
  return r.err.find("does not exist") != std::string::npos ||
         r.err.find("container not found") != std::string::npos;
}

}  // namespace

Result<std::vector<RuncContainerState>> parseRuncList(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return internalError("runc list: output is not JSON");
  std::vector<RuncContainerState> out;
  if (j.is_null()) return out;  // runc prints "null" when there are no containers
  if (!j.is_array()) return internalError("runc list: expected a JSON array");
  for (size_t i = 0; i < j.size(); ++i) {
    auto s = stateFromJson(j[i]);
    if (!s) return s.status().withContext("runc list [" + std::to_string(i) + "]");
    out.push_back(std::move(*s));
  }
  return out;
}

Result<RuncContainerState> parseRuncState(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return internalError("runc state: output is not JSON");
  return stateFromJson(j);
}

Runc::Runc(std::string binary, std::string root)
    : binary_(std::move(binary)), root_(std::move(root)) {}

std::vector<std::string> Runc::baseArgs() const { return {binary_, "--root", root_}; }

Result<std::vector<RuncContainerState>> Runc::list() const {
  std::error_code ec;
  if (!fs::exists(root_, ec)) return std::vector<RuncContainerState>{};
  auto argv = baseArgs();
  argv.insert(argv.end(), {"list", "--format", "json"});
  ASSIGN_OR_RETURN(auto r, runRunc(argv, 30));
  if (!r.ok()) return processFailure("runc list", argv, r);
  return parseRuncList(r.out);
}

Result<RuncContainerState> Runc::state(const std::string& id) const {
  auto argv = baseArgs();
  argv.insert(argv.end(), {"state", id});
  ASSIGN_OR_RETURN(auto r, runRunc(argv, 30));
  if (!r.ok()) {
    if (notExistError(r)) return notFound("runc: container '" + id + "' does not exist");
    return processFailure("runc state", argv, r);
  }
  return parseRuncState(r.out);
}

Status Runc::kill(const std::string& id, int signal, bool all) const {
  auto argv = baseArgs();
  argv.push_back("kill");
  if (all) argv.push_back("--all");
  argv.insert(argv.end(), {id, std::to_string(signal)});
  ASSIGN_OR_RETURN(auto r, runRunc(argv, 30));
  if (r.ok()) return Status::ok();
  if (r.err.find("not running") != std::string::npos ||
      r.err.find("process already finished") != std::string::npos)
    return Status::ok();
  if (notExistError(r)) return notFound("runc kill: container '" + id + "' does not exist");
  return processFailure("runc kill", argv, r);
}

Status Runc::remove(const std::string& id, bool force) const {
  auto argv = baseArgs();
  argv.push_back("delete");
  if (force) argv.push_back("--force");
  argv.push_back(id);
  ASSIGN_OR_RETURN(auto r, runRunc(argv, 60));
  if (r.ok() || notExistError(r)) return Status::ok();
  return processFailure("runc delete", argv, r);
}

Status Runc::pause(const std::string& id) const {
  auto argv = baseArgs();
  argv.insert(argv.end(), {"pause", id});
  ASSIGN_OR_RETURN(auto r, runRunc(argv, 30));
  if (!r.ok()) return processFailure("runc pause", argv, r);
  return Status::ok();
}

Status Runc::resume(const std::string& id) const {
  auto argv = baseArgs();
  argv.insert(argv.end(), {"resume", id});
  ASSIGN_OR_RETURN(auto r, runRunc(argv, 30));
  if (!r.ok()) return processFailure("runc resume", argv, r);
  return Status::ok();
}

Result<ExecResult> Runc::exec(const std::string& id, const ExecOptions& options) const {
  return execStreaming(id, options, nullptr, nullptr);
}

Result<ExecResult> Runc::execStreaming(const std::string& id, const ExecOptions& options,
                                       std::function<void(std::string_view)> onStdout,
                                       std::function<void(std::string_view)> onStderr) const {
  if (options.args.empty()) return invalidArgument("exec: args: expected a command");
  // runc exec writes the exec'd process's host pid here once it started; its absence tells a
  // runc failure (exit 1 + message) apart from the process exiting 1, and it lets a timeout
  // kill the process itself rather than only runc.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string pidFile =
      "/tmp/mercato-exec-" + std::to_string(getpid()) + "-" + std::to_string(rng()) + ".pid";
  auto argv = baseArgs();
  argv.insert(argv.end(), {"exec", "--pid-file", pidFile});
  if (!options.cwd.empty()) argv.insert(argv.end(), {"--cwd", options.cwd});
  if (!options.user.empty()) argv.insert(argv.end(), {"--user", options.user});
  for (const auto& e : options.env) argv.insert(argv.end(), {"--env", e});
  argv.push_back(id);
  argv.insert(argv.end(), options.args.begin(), options.args.end());

  auto readPid = [&]() -> pid_t {
    std::ifstream in(pidFile);
    long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
  };
  ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = options.timeout;
  spec.onTimeout = [&](pid_t runcPid) {
    pid_t p = readPid();
    if (p > 0)
      ::kill(p, SIGKILL);  // runc exec then reports 137 and exits
    else
      ::kill(runcPid, SIGKILL);
  };
  spec.onStdout = std::move(onStdout);
  spec.onStderr = std::move(onStderr);
  auto r = runProcess(spec);
  bool started = readPid() > 0;
  unlink(pidFile.c_str());
  if (!r) return r.status();
  if (!started && !r->ok()) {
    if (notExistError(*r)) return notFound("runc exec: container '" + id + "' does not exist");
    return processFailure("runc exec", argv, *r);
  }
  ExecResult out;
  out.exitCode = r->signal ? 128 + r->signal : r->exitCode;
  out.timedOut = r->timedOut;
  out.stdoutData = std::move(r->out);
  out.stderrData = std::move(r->err);
  return out;
}

}  // namespace mercato::runtime::host
