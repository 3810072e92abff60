#include "common/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "common/strings.hpp"

extern char** environ;

namespace mercato {
namespace {

using Steady = std::chrono::steady_clock;
constexpr auto kHardKillAfter = std::chrono::seconds(2);

std::string resolveProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
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

void closeFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

int msUntil(Steady::time_point t) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - Steady::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
}

// Blocks SIGPIPE on this thread while the child's stdin is written; on destruction consumes a
// pending one and restores the mask.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~SigpipeBlock() {
    timespec zero{};
    while (sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t set_{}, old_{};
};

// The child's environment, built before fork (no allocation after it).
std::vector<std::string> environmentFor(const ProcessSpec& spec) {
  std::map<std::string, std::string> envMap;
  if (spec.inheritEnv)
    for (char** e = environ; e && *e; ++e) {
      std::string_view kv(*e);
      auto eq = kv.find('=');
      if (eq != std::string_view::npos) envMap[std::string(kv.substr(0, eq))] = std::string(kv);
    }
  for (const auto& kv : spec.env) envMap[kv.substr(0, kv.find('='))] = kv;
  std::vector<std::string> out;
  for (auto& [k, v] : envMap) out.push_back(std::move(v));
  return out;
}

}  // namespace

std::string ProcessResult::describe() const {
  if (timedOut)
    return "timed out after " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()) +
           " ms";
  if (outputTooLarge) return "printed more output than allowed";
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exit status " + std::to_string(exitCode);
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
  const std::string program = resolveProgram(spec.argv[0]);
  if (program.empty())
    return notFound("program '" + spec.argv[0] + "' not found or not executable");

  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> envStore = environmentFor(spec);
  std::vector<char*> envp;
  for (auto& e : envStore) envp.push_back(e.data());
  envp.push_back(nullptr);

  int inPipe[2] = {-1, -1}, outPipe[2] = {-1, -1}, errPipe[2] = {-1, -1};
  auto closeAll = [&] {
    for (int* fd : {&inPipe[0], &inPipe[1], &outPipe[0], &outPipe[1], &errPipe[0], &errPipe[1]})
      closeFd(*fd);
  };
  if ((!spec.stdinData.empty() && pipe2(inPipe, O_CLOEXEC) != 0) ||
      pipe2(outPipe, O_CLOEXEC) != 0 || pipe2(errPipe, O_CLOEXEC) != 0) {
    const int e = errno;
    closeAll();
    return internalError(std::string("runProcess: pipe: ") + strerror(e));
  }
  int devNull = open("/dev/null", O_RDONLY | O_CLOEXEC);

  const auto start = Steady::now();
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    closeAll();
    closeFd(devNull);
    return internalError(std::string("runProcess: fork: ") + strerror(e));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (spec.ownProcessGroup) setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(inPipe[0] >= 0 ? inPipe[0] : devNull, 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    execve(program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  // Also from here: no window where a kill of the group misses the child.
  if (spec.ownProcessGroup) setpgid(pid, pid);
  closeFd(inPipe[0]);
  closeFd(outPipe[1]);
  closeFd(errPipe[1]);
  closeFd(devNull);
  SigpipeBlock sigpipe;

  ProcessResult result;
  int inFd = inPipe[1], outFd = outPipe[0], errFd = errPipe[0];
  if (inFd >= 0) fcntl(inFd, F_SETFL, O_NONBLOCK);
  size_t inOff = 0;
  const std::optional<Steady::time_point> deadline =
      spec.timeout ? std::optional(start + *spec.timeout) : std::nullopt;
  std::optional<Steady::time_point> hardKillAt;
  auto killChild = [&] { kill(spec.ownProcessGroup ? -pid : pid, SIGKILL); };
  auto stopping = [&](bool timedOut) {
    if (hardKillAt) return;
    if (timedOut) {
      result.timedOut = true;
      if (spec.onTimeout) {
        spec.onTimeout(pid);
      } else {
        killChild();
      }
    } else {
      killChild();
    }
    hardKillAt = Steady::now() + kHardKillAfter;
  };
  // Returns false once the child is past its hard-kill deadline.
  auto checkTime = [&] {
    const auto now = Steady::now();
    if (deadline && !result.timedOut && now >= *deadline) stopping(true);
    if (hardKillAt && now >= *hardKillAt) {
      killChild();
      return false;
    }
    return true;
  };

  char buf[65536];
  while (outFd >= 0 || errFd >= 0 || inFd >= 0) {
    pollfd fds[3];
    int n = 0, iOut = -1, iErr = -1, iIn = -1;
    if (outFd >= 0) iOut = n, fds[n++] = {outFd, POLLIN, 0};
    if (errFd >= 0) iErr = n, fds[n++] = {errFd, POLLIN, 0};
    if (inFd >= 0) iIn = n, fds[n++] = {inFd, POLLOUT, 0};
    int waitMs = -1;
    if (hardKillAt) {
      waitMs = msUntil(*hardKillAt);
    } else if (deadline) {
      waitMs = msUntil(*deadline);
    }
    const int rc = poll(fds, nfds_t(n), waitMs);
    if (rc < 0 && errno != EINTR) break;
    if (!checkTime()) break;  // output held open by a process we cannot kill: stop reading
    if (rc <= 0) continue;
    if (iIn >= 0 && (fds[iIn].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = write(inFd, spec.stdinData.data() + inOff, spec.stdinData.size() - inOff);
      if (w > 0) inOff += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || inOff >= spec.stdinData.size())
        closeFd(inFd);
    }
    auto drain = [&](int idx, int& fd, bool isOut) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      const ssize_t r = read(fd, buf, sizeof buf);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
      if (r <= 0) return closeFd(fd);
      const std::string_view chunk(buf, static_cast<size_t>(r));
      const auto& cb = isOut ? spec.onStdout : spec.onStderr;
      if (cb) return cb(chunk);
      if (!isOut) return appendCapped(result.err, chunk, spec.maxStderr);
      if (spec.killOnStdoutOverflow && result.out.size() + chunk.size() > spec.maxStdout) {
        if (!result.outputTooLarge) stopping(false);
        result.outputTooLarge = true;
        return;
      }
      appendCapped(result.out, chunk, spec.maxStdout);
    };
    drain(iOut, outFd, true);
    drain(iErr, errFd, false);
  }
  closeFd(inFd);
  closeFd(outFd);
  closeFd(errFd);

  // Wait for the child to exit without reaping it (its pid, and so its group id, stays
  // reserved), still on the deadlines; then kill what it left in its group; then reap.
  const int pidFd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    siginfo_t info{};
    const int rc = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == pid) break;
    if (rc < 0 && errno != EINTR) break;
    if (!checkTime()) hardKillAt = Steady::now() + kHardKillAfter;  // SIGKILL sent: it will go
    int waitMs = hardKillAt ? msUntil(*hardKillAt) : deadline ? msUntil(*deadline) : 1'000;
    if (pidFd >= 0) {
      pollfd p{pidFd, POLLIN, 0};
      poll(&p, 1, std::max(waitMs, 1));
    } else {
      usleep(2'000);
    }
  }
  if (pidFd >= 0) close(pidFd);
  if (spec.ownProcessGroup) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - start);
  if (WIFEXITED(status)) {
    result.exitCode = WEXITSTATUS(status);
    if (result.exitCode == 127 && result.err.empty()) result.err = "could not execute " + program;
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace mercato
