#include "provider/bidengine/script/script_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "common/strings.hpp"

extern char** environ;

namespace mercato::provider::bidengine {
namespace {

using Steady = std::chrono::steady_clock;
constexpr size_t kMaxStderr = 4096;

std::string resolve(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = getenv("PATH");
  for (const auto& dir : split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

int msUntil(Steady::time_point t) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - Steady::now()).count();
  return static_cast<int>(std::max<int64_t>(0, left));
}

void closeFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

std::string ScriptResult::describe() const {
  if (timedOut)
    return "timed out after " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()) +
           " ms";
  if (outputTooLarge) return "printed more output than allowed";
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exit status " + std::to_string(exitCode);
}

Result<ScriptResult> runScript(const ScriptSpec& spec) {
  if (spec.argv.empty()) return invalidArgument("pricing script: empty command");
  const std::string program = resolve(spec.argv[0]);
  if (program.empty())
    return notFound("pricing script '" + spec.argv[0] + "' is missing or not executable");
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return internalError(std::string("pipe: ") + strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close(in[0]), close(in[1]);
    return internalError(std::string("pipe: ") + strerror(e));
  }
  const auto start = Steady::now();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return internalError(std::string("fork: ") + strerror(e));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only. Its own process group, so a kill reaches helpers.
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    execve(program.c_str(), argv.data(), environ);
    _exit(127);
  }
  setpgid(pid, pid);  // also from here: no window where a kill of the group misses the child
  close(in[0]), close(out[1]), close(err[1]);
  int inFd = in[1], outFd = out[0], errFd = err[0];
  fcntl(inFd, F_SETFL, O_NONBLOCK);
  // A script that exits without reading its stdin must not kill the daemon: SIGPIPE is blocked
  // on this thread while we write, and a pending one is consumed before unblocking.
  sigset_t pipeSet, oldMask;
  sigemptyset(&pipeSet);
  sigaddset(&pipeSet, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipeSet, &oldMask);

  ScriptResult r;
  size_t inOff = 0;
  if (spec.stdinData.empty()) closeFd(inFd);
  const auto deadline = start + spec.timeout;
  std::optional<Steady::time_point> giveUpAt;  // set once the group was killed
  auto killGroup = [&] {
    kill(-pid, SIGKILL);
    giveUpAt = Steady::now() + std::chrono::seconds(1);
  };
  char buf[16384];
  while (outFd >= 0 || errFd >= 0) {
    pollfd fds[3];
    int n = 0, iOut = -1, iErr = -1, iIn = -1;
    if (outFd >= 0) iOut = n, fds[n++] = {outFd, POLLIN, 0};
    if (errFd >= 0) iErr = n, fds[n++] = {errFd, POLLIN, 0};
    if (inFd >= 0) iIn = n, fds[n++] = {inFd, POLLOUT, 0};
    int rc = poll(fds, n, giveUpAt ? msUntil(*giveUpAt) : msUntil(deadline));
    if (rc < 0 && errno != EINTR) break;
    if (!giveUpAt && Steady::now() >= deadline) {
      r.timedOut = true;
      killGroup();
    } else if (giveUpAt && Steady::now() >= *giveUpAt) {
      break;  // a process outside the group holds the pipes open
    }
    if (rc <= 0) continue;
    if (iIn >= 0 && (fds[iIn].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(inFd, spec.stdinData.data() + inOff, spec.stdinData.size() - inOff);
      if (w > 0) inOff += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || inOff >= spec.stdinData.size())
        closeFd(inFd);
    }
    if (iOut >= 0 && (fds[iOut].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = read(outFd, buf, sizeof buf);
      if (got > 0) {
        if (r.out.size() + static_cast<size_t>(got) > spec.maxOutputBytes) {
          if (!r.outputTooLarge && !giveUpAt) killGroup();
          r.outputTooLarge = true;
        } else {
          r.out.append(buf, static_cast<size_t>(got));
        }
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        closeFd(outFd);
      }
    }
    if (iErr >= 0 && (fds[iErr].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = read(errFd, buf, sizeof buf);
      if (got > 0) {
        if (r.err.size() < kMaxStderr)
          r.err.append(buf, std::min(static_cast<size_t>(got), kMaxStderr - r.err.size()));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        closeFd(errFd);
      }
    }
  }
  closeFd(inFd), closeFd(outFd), closeFd(errFd);
  timespec zero{};
  while (sigtimedwait(&pipeSet, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &oldMask, nullptr);
  // Wait for the leader to exit without reaping it (its pid, and so the group id, stays
  // reserved), then kill whatever it left behind in its group, then reap.
  siginfo_t info{};
  while (true) {
    info.si_pid = 0;
    int rc = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == pid) break;
    if (rc < 0 && errno != EINTR) break;
    if (!giveUpAt && Steady::now() >= deadline) {
      r.timedOut = true;
      killGroup();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - start);
  if (WIFEXITED(status)) {
    r.exitCode = WEXITSTATUS(status);
    if (r.exitCode == 127 && r.err.empty()) r.err = "could not execute " + program;
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

}  // namespace mercato::provider::bidengine
