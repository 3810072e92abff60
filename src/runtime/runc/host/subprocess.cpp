#include "runtime/runc/host/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "common/strings.hpp"

extern char** environ;

namespace mercato::runtime::host {
namespace {

using Steady = std::chrono::steady_clock;

std::string resolveProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& dir : split(p, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

void appendCapped(std::string& dst, std::string_view chunk, size_t cap) {
  if (dst.size() >= cap) return;
  dst.append(chunk.substr(0, cap - dst.size()));
}

}  // namespace

std::string ProcessResult::describe() const {
  std::string s;
  if (signal != 0)
    s = "killed by signal " + std::to_string(signal);
  else
    s = "exit status " + std::to_string(exitCode);
  if (timedOut) s = "timed out (" + s + ")";
  return s;
}

std::string commandLine(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

Status processFailure(std::string_view what, const std::vector<std::string>& argv,
                      const ProcessResult& r) {
  std::string msg = std::string(what) + ": `" + commandLine(argv) + "` " + r.describe();
  std::string_view err = trimSpace(r.err);
  if (err.empty()) err = trimSpace(r.out);
  if (!err.empty()) msg += ": " + std::string(err.substr(0, 4000));
  return r.timedOut ? deadlineExceeded(std::move(msg)) : internalError(std::move(msg));
}

Result<ProcessResult> runProcess(const ProcessSpec& spec) {
  if (spec.argv.empty()) return invalidArgument("runProcess: empty argv");
  std::string program = resolveProgram(spec.argv[0]);
  if (program.empty() || access(program.c_str(), X_OK) != 0)
    return notFound("runProcess: program '" + spec.argv[0] + "' not found or not executable");

  // Everything the child needs is built before fork: no allocation after it.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::map<std::string, std::string> envMap;
  if (spec.inheritEnv)
    for (char** e = environ; e && *e; ++e) {
      std::string_view kv(*e);
      auto eq = kv.find('=');
      if (eq != std::string_view::npos) envMap[std::string(kv.substr(0, eq))] = std::string(kv);
    }
  for (const auto& kv : spec.env) {
    auto eq = kv.find('=');
    envMap[kv.substr(0, eq)] = kv;
  }
  std::vector<std::string> envStore;
  for (auto& [k, v] : envMap) envStore.push_back(v);
  std::vector<char*> envp;
  for (auto& e : envStore) envp.push_back(e.data());
  envp.push_back(nullptr);

  int inPipe[2] = {-1, -1}, outPipe[2], errPipe[2];
  if (!spec.stdinData.empty() && pipe2(inPipe, O_CLOEXEC) != 0)
    return internalError(std::string("runProcess: pipe: ") + strerror(errno));
  if (pipe2(outPipe, O_CLOEXEC) != 0 || pipe2(errPipe, O_CLOEXEC) != 0)
    return internalError(std::string("runProcess: pipe: ") + strerror(errno));
  int devNull = open("/dev/null", O_RDONLY | O_CLOEXEC);

  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {inPipe[0], inPipe[1], outPipe[0], outPipe[1], errPipe[0], errPipe[1], devNull})
      if (fd >= 0) close(fd);
    return internalError(std::string("runProcess: fork: ") + strerror(e));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(inPipe[0] >= 0 ? inPipe[0] : devNull, 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    execve(program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  if (inPipe[0] >= 0) close(inPipe[0]);
  close(outPipe[1]);
  close(errPipe[1]);
  if (devNull >= 0) close(devNull);

  ProcessResult result;
  int inFd = inPipe[1];
  if (inFd >= 0) fcntl(inFd, F_SETFL, O_NONBLOCK);
  size_t inOff = 0;
  int outFd = outPipe[0], errFd = errPipe[0];
  auto start = Steady::now();
  std::optional<Steady::time_point> hardKillAt;
  char buf[65536];
  while (outFd >= 0 || errFd >= 0 || inFd >= 0) {
    pollfd fds[3];
    int n = 0;
    int idxOut = -1, idxErr = -1, idxIn = -1;
    if (outFd >= 0) idxOut = n, fds[n++] = {outFd, POLLIN, 0};
    if (errFd >= 0) idxErr = n, fds[n++] = {errFd, POLLIN, 0};
    if (inFd >= 0) idxIn = n, fds[n++] = {inFd, POLLOUT, 0};
    int waitMs = -1;
    auto now = Steady::now();
    if (spec.timeout && !result.timedOut) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(start + *spec.timeout - now);
      waitMs = std::max<int64_t>(0, left.count());
    } else if (hardKillAt) {
      waitMs = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(*hardKillAt - now).count());
    }
    int rc = poll(fds, n, waitMs);
    if (rc < 0 && errno != EINTR) break;
    now = Steady::now();
    if (spec.timeout && !result.timedOut && now >= start + *spec.timeout) {
      result.timedOut = true;
      if (spec.onTimeout)
        spec.onTimeout(pid);
      else
        kill(pid, SIGKILL);
      hardKillAt = now + std::chrono::seconds(2);
    } else if (hardKillAt && now >= *hardKillAt) {
      kill(pid, SIGKILL);
      hardKillAt.reset();
      // Output pipes may be held open by grandchildren; stop reading.
      if (outFd >= 0) close(outFd), outFd = -1;
      if (errFd >= 0) close(errFd), errFd = -1;
      if (inFd >= 0) close(inFd), inFd = -1;
      break;
    }
    if (rc <= 0) continue;
    if (idxIn >= 0 && (fds[idxIn].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(inFd, spec.stdinData.data() + inOff, spec.stdinData.size() - inOff);
      if (w > 0) inOff += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || inOff >= spec.stdinData.size()) {
        close(inFd);
        inFd = -1;
      }
    }
    auto drain = [&](int idx, int& fd, const std::function<void(std::string_view)>& cb,
                     std::string& sink) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        if (cb)
          cb(std::string_view(buf, static_cast<size_t>(r)));
        else
          appendCapped(sink, std::string_view(buf, static_cast<size_t>(r)), spec.maxCapture);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fd);
        fd = -1;
      }
    };
    drain(idxOut, outFd, spec.onStdout, result.out);
    drain(idxErr, errFd, spec.onStderr, result.err);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exitCode = WEXITSTATUS(status);
    if (result.exitCode == 127 && result.err.empty()) result.err = "could not execute " + program;
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace mercato::runtime::host
