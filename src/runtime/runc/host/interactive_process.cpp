#include "runtime/runc/host/interactive_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

extern char** environ;

namespace mercato::runtime::host {

struct InteractiveProcess::State {
  InteractiveOptions options;
  pid_t pid = -1;
  int inFd = -1;   // pipe write end, or the pty master (same as outFd)
  int outFd = -1;  // pipe read end, or the pty master
  int errFd = -1;  // pipes mode only
  int wakeRead = -1, wakeWrite = -1;
  int pidFd = -1;
  std::thread thread;

  std::mutex mu;  // guards the fields below
  std::deque<std::string> input;
  size_t inputOffset = 0;  // into input.front()
  bool inputClosing = false;
  bool terminateRequested = false;
  bool exited = false;

  void wake() const {
    const char c = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeWrite, &c, 1);
  }
  void run();
};

namespace {

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int exitStatusOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

void InteractiveProcess::State::run() {
  using Steady = std::chrono::steady_clock;
  char buf[16384];
  std::optional<Steady::time_point> killAt;  // after terminate(): SIGKILL the child if still up
  bool childGone = false;
  int status = 0;
  const bool tty = options.tty;
  bool stdinOpen = true;

  auto readInto = [&](int& fd, int stream) {
    for (;;) {
      const ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        if (options.onOutput) options.onOutput(stream, std::string_view(buf, size_t(r)));
        if (size_t(r) < sizeof buf) return;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EAGAIN) return;
      // EOF; EIO on a pty master once no process holds the slave.
      std::lock_guard lock(mu);  // resize() reads the master under it
      if (tty) {
        inFd = -1;  // the same descriptor
        stdinOpen = false;
      }
      closeFd(fd);
      return;
    }
  };

  for (;;) {
    bool wantWrite = false;
    bool terminate = false;
    {
      std::lock_guard lock(mu);
      if (stdinOpen && inFd >= 0 && input.empty() && inputClosing && !tty) {
        closeFd(inFd);  // EOF for the child, after everything queued went out
        stdinOpen = false;
      }
      wantWrite = stdinOpen && inFd >= 0 && !input.empty();
      terminate = terminateRequested;
    }
    if (terminate && !killAt && !childGone) {
      if (options.onTerminate) {
        options.onTerminate(pid);
      } else {
        ::kill(pid, SIGKILL);
      }
      killAt = Steady::now() + std::chrono::seconds(2);
    }
    if (childGone && outFd < 0 && errFd < 0) break;

    pollfd fds[5];
    int n = 0;
    int iOut = -1, iErr = -1, iIn = -1, iWake = -1, iPid = -1;
    if (outFd >= 0)
      iOut = n, fds[n++] = {outFd, short(POLLIN | (tty && wantWrite ? POLLOUT : 0)), 0};
    if (errFd >= 0) iErr = n, fds[n++] = {errFd, POLLIN, 0};
    if (!tty && wantWrite) iIn = n, fds[n++] = {inFd, POLLOUT, 0};
    iWake = n, fds[n++] = {wakeRead, POLLIN, 0};
    if (pidFd >= 0 && !childGone) iPid = n, fds[n++] = {pidFd, POLLIN, 0};
    int timeoutMs = -1;
    if (childGone) {
      timeoutMs = 200;  // output a grandchild still holds: give it a moment, then stop
    } else if (killAt) {
      timeoutMs = int(std::max<int64_t>(
          0,
          std::chrono::duration_cast<std::chrono::milliseconds>(*killAt - Steady::now()).count()));
    }
    const int rc = ::poll(fds, nfds_t(n), timeoutMs);
    if (rc < 0 && errno != EINTR) break;
    if (rc == 0 && childGone) break;
    if (killAt && Steady::now() >= *killAt && !childGone) {
      ::kill(pid, SIGKILL);
      killAt = Steady::now() + std::chrono::seconds(2);
    }
    if (rc <= 0) continue;
    if (iWake >= 0 && (fds[iWake].revents & POLLIN)) {
      char drain[64];
      while (::read(wakeRead, drain, sizeof drain) > 0) {
      }
    }
    const bool canWrite = (iIn >= 0 && (fds[iIn].revents & (POLLOUT | POLLERR | POLLHUP))) ||
                          (tty && iOut >= 0 && (fds[iOut].revents & POLLOUT));
    if (canWrite) {
      std::lock_guard lock(mu);
      while (!input.empty() && inFd >= 0) {
        const std::string& front = input.front();
        const ssize_t w = ::write(inFd, front.data() + inputOffset, front.size() - inputOffset);
        if (w < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          input.clear();  // the reader went away (EPIPE): drop what is left
          inputOffset = 0;
          if (!tty) closeFd(inFd);
          stdinOpen = false;
          break;
        }
        inputOffset += size_t(w);
        if (inputOffset == front.size()) {
          input.pop_front();
          inputOffset = 0;
        }
      }
    }
    if (iOut >= 0 && (fds[iOut].revents & (POLLIN | POLLHUP | POLLERR))) readInto(outFd, 1);
    if (iErr >= 0 && (fds[iErr].revents & (POLLIN | POLLHUP | POLLERR))) readInto(errFd, 2);
    if (iPid >= 0 && (fds[iPid].revents & POLLIN)) {
      if (::waitpid(pid, &status, WNOHANG) == pid) childGone = true;
    }
    if (pidFd < 0 && !childGone && outFd < 0 && errFd < 0) {
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      childGone = true;
    }
  }
  if (!childGone) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  closeFd(outFd);
  closeFd(errFd);
  if (!tty) closeFd(inFd);
  inFd = -1;
  closeFd(pidFd);
  {
    std::lock_guard lock(mu);
    exited = true;
  }
  if (options.onExit) options.onExit(exitStatusOf(status));
}

Result<std::unique_ptr<InteractiveProcess>> InteractiveProcess::start(InteractiveOptions options) {
  if (options.argv.empty() || options.argv[0].empty() || options.argv[0][0] != '/') {
    return invalidArgument("interactive process: argv[0] must be an absolute path");
  }
  auto st = std::make_shared<State>();
  st->options = std::move(options);
  const bool tty = st->options.tty;
  std::vector<char*> argv;
  for (auto& a : st->options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto fail = [](const char* what) {
    return internalError(std::string("interactive process: ") + what + ": " + strerror(errno));
  };
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return fail("pipe");
  st->wakeRead = wake[0];
  st->wakeWrite = wake[1];
  int childIn = -1, childOut = -1, childErr = -1;
  int slave = -1;
  if (tty) {
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return fail("posix_openpt");
    char name[128];
    if (::grantpt(master) != 0 || ::unlockpt(master) != 0 ||
        ::ptsname_r(master, name, sizeof name) != 0) {
      ::close(master);
      return fail("pty setup");
    }
    slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
      ::close(master);
      return fail("open pty slave");
    }
    winsize ws{};
    ws.ws_row = st->options.rows;
    ws.ws_col = st->options.cols;
    ::ioctl(master, TIOCSWINSZ, &ws);
    if (st->options.rawTerminal) {
      termios t{};
      if (::tcgetattr(slave, &t) == 0) {
        ::cfmakeraw(&t);
        ::tcsetattr(slave, TCSANOW, &t);
      }
    }
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    st->inFd = st->outFd = master;
  } else {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return fail("pipe");
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return fail("pipe");
    }
    childIn = in[0];
    childOut = out[1];
    childErr = err[1];
    st->inFd = in[1];
    st->outFd = out[0];
    st->errFd = err[0];
    for (int fd : {st->inFd, st->outFd, st->errFd}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }

  const pid_t pid = ::fork();
  if (pid < 0) {
    const Status s = fail("fork");
    for (int fd : {childIn, childOut, childErr, slave}) {
      if (fd >= 0) ::close(fd);
    }
    closeFd(st->outFd);
    closeFd(st->errFd);
    if (!tty) closeFd(st->inFd);
    closeFd(st->wakeRead);
    closeFd(st->wakeWrite);
    return s;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (tty) {
      setsid();
      ioctl(slave, TIOCSCTTY, 0);
      dup2(slave, 0);
      dup2(slave, 1);
      dup2(slave, 2);
    } else {
      setsid();  // no terminal of ours leaks in; signals to our group don't reach it
      dup2(childIn, 0);
      dup2(childOut, 1);
      dup2(childErr, 2);
    }
    syscall(SYS_close_range, 3u, ~0u, 0u);
    execve(argv[0], argv.data(), environ);
    _exit(127);
  }
  for (int fd : {childIn, childOut, childErr, slave}) {
    if (fd >= 0) ::close(fd);
  }
  st->pid = pid;
  st->pidFd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // -1: rely on EOF
  st->thread = std::thread([st] { st->run(); });
  return std::unique_ptr<InteractiveProcess>(new InteractiveProcess(st));
}

InteractiveProcess::InteractiveProcess(std::shared_ptr<State> state) : state_(std::move(state)) {}

InteractiveProcess::~InteractiveProcess() {
  terminate();
  if (state_->thread.get_id() == std::this_thread::get_id()) {
    state_->thread.detach();  // destroyed from a callback: the thread finishes on its own
    return;
  }
  if (state_->thread.joinable()) state_->thread.join();
  closeFd(state_->wakeRead);
  closeFd(state_->wakeWrite);
}

pid_t InteractiveProcess::pid() const { return state_->pid; }

void InteractiveProcess::write(std::string data) {
  if (data.empty()) return;
  std::lock_guard lock(state_->mu);
  if (state_->exited || state_->inputClosing) return;
  state_->input.push_back(std::move(data));
  state_->wake();
}

void InteractiveProcess::closeInput() {
  std::lock_guard lock(state_->mu);
  if (state_->exited || state_->inputClosing) return;
  if (state_->options.tty) {
    state_->input.push_back(std::string(1, '\x04'));  // the terminal's EOF character
  } else {
    state_->inputClosing = true;
  }
  state_->wake();
}

Status InteractiveProcess::resize(uint16_t rows, uint16_t cols) {
  if (!state_->options.tty) return failedPrecondition("resize: the process has no terminal");
  std::lock_guard lock(state_->mu);
  if (state_->exited || state_->outFd < 0) return failedPrecondition("resize: the process ended");
  winsize ws{};
  ws.ws_row = rows;
  ws.ws_col = cols;
  if (::ioctl(state_->outFd, TIOCSWINSZ, &ws) != 0) {
    return internalError(std::string("resize: ") + strerror(errno));
  }
  return Status::ok();
}

void InteractiveProcess::terminate() {
  std::lock_guard lock(state_->mu);
  if (state_->exited || state_->terminateRequested) return;
  state_->terminateRequested = true;
  state_->wake();
}

}  // namespace mercato::runtime::host
