#include "runtime/runc/host/shim.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/strings.hpp"
#include "runtime/runc/host/log_files.hpp"
#include "runtime/runc/host/metering.hpp"

namespace mercato::runtime::host {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `durable`: fsync before the rename. The pid file sits on the start-latency path and is
// worthless after a machine crash (the container is gone too), so it skips the fsync.
Status writeFileAtomic(const std::string& path, const std::string& data, bool durable = true) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return internalError("open " + tmp + ": " + strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return internalError("write " + tmp + ": " + strerror(e));
    }
    off += static_cast<size_t>(w);
  }
  if (durable) ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return internalError("rename " + tmp + ": " + strerror(errno));
  return Status::ok();
}

void writeAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t w = ::write(fd, s.data(), s.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s.remove_prefix(static_cast<size_t>(w));
  }
}

volatile sig_atomic_t gRuncPid = 0;

void forwardSignal(int sig) {
  pid_t p = gRuncPid;
  if (p > 0) ::kill(p, sig);
}

}  // namespace

Result<ShimOptions> withShimDefaults(ShimOptions o) {
  if (o.shimBinary.empty()) return invalidArgument("shim: shimBinary is required");
  if (o.id.empty()) return invalidArgument("shim: id is required");
  if (o.bundleDir.empty()) return invalidArgument("shim: bundleDir is required");
  if (o.stdoutLog.empty() || o.stderrLog.empty())
    return invalidArgument("shim: stdoutLog and stderrLog are required");
  if (o.exitFile.empty()) return invalidArgument("shim: exitFile is required");
  if (o.maxLogBytes == 0 || o.maxLogFiles < 1)
    return invalidArgument("shim: maxLogBytes must be > 0 and maxLogFiles >= 1");
  if (o.pidFile.empty()) o.pidFile = o.bundleDir + "/container.pid";
  if (o.shimPidFile.empty()) o.shimPidFile = o.bundleDir + "/shim.pid";
  if (o.shimLog.empty()) o.shimLog = o.bundleDir + "/shim.log";
  if (o.cgroupsPath.empty()) o.cgroupsPath = "/mercato/" + o.id;
  return o;
}

json shimOptionsToJson(const ShimOptions& o) {
  return {{"shimBinary", o.shimBinary},
          {"runcBinary", o.runcBinary},
          {"runcRoot", o.runcRoot},
          {"id", o.id},
          {"bundleDir", o.bundleDir},
          {"stdoutLog", o.stdoutLog},
          {"stderrLog", o.stderrLog},
          {"exitFile", o.exitFile},
          {"pidFile", o.pidFile},
          {"shimPidFile", o.shimPidFile},
          {"shimLog", o.shimLog},
          {"cgroupsPath", o.cgroupsPath},
          {"maxLogBytes", o.maxLogBytes},
          {"maxLogFiles", o.maxLogFiles},
          {"startTimeoutMs", o.startTimeout.count()}};
}

Result<ShimOptions> shimOptionsFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalidArgument("shim options: not a JSON object");
  ShimOptions o;
  try {
    o.shimBinary = j.value("shimBinary", "");
    o.runcBinary = j.value("runcBinary", std::string(kDefaultRuncBinary));
    o.runcRoot = j.value("runcRoot", std::string(kDefaultRuncRoot));
    o.id = j.value("id", "");
    o.bundleDir = j.value("bundleDir", "");
    o.stdoutLog = j.value("stdoutLog", "");
    o.stderrLog = j.value("stderrLog", "");
    o.exitFile = j.value("exitFile", "");
    o.pidFile = j.value("pidFile", "");
    o.shimPidFile = j.value("shimPidFile", "");
    o.shimLog = j.value("shimLog", "");
    o.cgroupsPath = j.value("cgroupsPath", "");
    o.maxLogBytes = j.value("maxLogBytes", uint64_t{10} << 20);
    o.maxLogFiles = j.value("maxLogFiles", 3);
    o.startTimeout = std::chrono::milliseconds(j.value("startTimeoutMs", int64_t{30000}));
  } catch (const json::exception& e) {
    return invalidArgument(std::string("shim options: ") + e.what());
  }
  return withShimDefaults(std::move(o));
}

json exitInfoToJson(const ExitInfo& e) {
  json j = {{"exitCode", e.exitCode},
            {"signal", e.signal},
            {"oomKilled", e.oomKilled},
            {"startedAt", e.startedAtMs},
            {"finishedAt", e.finishedAtMs}};
  if (!e.error.empty()) j["error"] = e.error;
  return j;
}

Result<ExitInfo> parseExitInfo(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return internalError("exit file: not a JSON object");
  ExitInfo e;
  auto num = [&](const char* key, int64_t& out) -> Status {
    auto it = j.find(key);
    if (it == j.end()) return Status::ok();
    if (!it->is_number_integer())
      return internalError(std::string("exit file: ") + key + ": not an integer");
    out = it->get<int64_t>();
    return Status::ok();
  };
  int64_t code = -1, sig = 0;
  RETURN_IF_ERROR(num("exitCode", code));
  RETURN_IF_ERROR(num("signal", sig));
  RETURN_IF_ERROR(num("startedAt", e.startedAtMs));
  RETURN_IF_ERROR(num("finishedAt", e.finishedAtMs));
  if (code < -1 || code > 255 || sig < 0 || sig > 128)
    return internalError("exit file: exitCode/signal out of range");
  e.exitCode = static_cast<int>(code);
  e.signal = static_cast<int>(sig);
  if (auto it = j.find("oomKilled"); it != j.end() && it->is_boolean())
    e.oomKilled = it->get<bool>();
  if (auto it = j.find("error"); it != j.end() && it->is_string()) e.error = it->get<std::string>();
  return e;
}

Result<ExitInfo> readExitFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return notFound("exit file " + path + " does not exist (container still running?)");
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = parseExitInfo(ss.str());
  if (!r) return r.status().withContext(path);
  return r;
}

Result<int> readPidFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return notFound("pid file " + path + " does not exist");
  std::string s;
  std::getline(in, s);
  auto t = trimSpace(s);
  int pid = 0;
  for (char c : t) {
    if (c < '0' || c > '9' || pid > 100000000)
      return internalError("pid file " + path + ": garbled");
    pid = pid * 10 + (c - '0');
  }
  if (pid <= 0) return internalError("pid file " + path + ": garbled");
  return pid;
}

bool processExists(int pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

Result<StartedContainer> startContainer(const ShimOptions& input) {
  ASSIGN_OR_RETURN(ShimOptions o, withShimDefaults(input));
  if (::access(o.shimBinary.c_str(), X_OK) != 0)
    return notFound("shim binary " + o.shimBinary + " is not executable");
  if (::access(o.exitFile.c_str(), F_OK) == 0)
    return alreadyExists("exit file " + o.exitFile + " already exists; remove it before a restart");
  ::unlink(o.pidFile.c_str());

  std::string optionsJson = shimOptionsToJson(o).dump();
  std::vector<std::string> args = {o.shimBinary, "--sync-fd", "3", "--options", optionsJson};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {
      const_cast<char*>("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
      nullptr};

  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0)
    return internalError(std::string("shim: pipe: ") + strerror(errno));
  int devNull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int logFd = ::open(o.shimLog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (devNull < 0 || logFd < 0) {
    int e = errno;
    for (int fd : {sync[0], sync[1], devNull, logFd})
      if (fd >= 0) ::close(fd);
    return internalError("shim: open /dev/null or " + o.shimLog + ": " + strerror(e));
  }

  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    for (int fd : {sync[0], sync[1], devNull, logFd}) ::close(fd);
    return internalError(std::string("shim: fork: ") + strerror(e));
  }
  if (child == 0) {
    // Async-signal-safe only. New session, then fork again so the shim is re-parented to init
    // and can never reacquire a controlling terminal.
    setsid();
    pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Move the sync pipe to fd 3 without clobbering 0-2 first.
    int s = fcntl(sync[1], F_DUPFD, 10);
    dup2(devNull, 0);
    dup2(devNull, 1);
    dup2(logFd, 2);
    dup2(s, 3);  // dup2 clears FD_CLOEXEC on fd 3
    syscall(SYS_close_range, 4u, ~0u, 0u);
    chdir("/");
    execve(argv[0], argv.data(), envp);
    _exit(127);
  }
  ::close(sync[1]);
  ::close(devNull);
  ::close(logFd);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }

  // Read the shim's one-line report; EOF without one means it died.
  std::string report;
  auto deadline = std::chrono::steady_clock::now() + o.startTimeout;
  char buf[4096];
  bool eof = false, timedOut = false;
  while (!eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    pollfd p{sync[0], POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    ssize_t r = ::read(sync[0], buf, sizeof buf);
    if (r > 0)
      report.append(buf, static_cast<size_t>(r));
    else if (r == 0 || errno != EINTR)
      eof = true;
  }
  ::close(sync[0]);
  if (timedOut) {
    auto shimPid = readPidFile(o.shimPidFile);
    if (shimPid) ::kill(*shimPid, SIGTERM);
    return deadlineExceeded("container " + o.id + " did not start within " +
                            std::to_string(o.startTimeout.count()) + " ms");
  }
  json j = json::parse(report, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::string log;
    std::ifstream in(o.shimLog);
    std::getline(in, log, '\0');
    return internalError("container " + o.id + ": shim exited without a report" +
                         (log.empty() ? std::string() : ": " + std::string(trimSpace(log))));
  }
  if (j.contains("error"))
    return internalError("container " + o.id + ": " + j.value("error", std::string()));
  StartedContainer sc;
  sc.initPid = j.value("pid", 0);
  sc.shimPid = j.value("shimPid", 0);
  sc.startedAtMs = j.value("startedAt", int64_t{0});
  return sc;
}

int runShim(const ShimOptions& o, int syncFd) {
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = forwardSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  if (syncFd >= 0) fcntl(syncFd, F_SETFD, FD_CLOEXEC);

  auto report = [&](const json& j) {
    if (syncFd < 0) return;
    writeAll(syncFd, j.dump() + "\n");
    ::close(syncFd);
    syncFd = -1;
  };
  auto fail = [&](const std::string& msg) {
    ExitInfo e;
    e.error = msg;
    e.startedAtMs = e.finishedAtMs = nowMs();
    (void)writeFileAtomic(o.exitFile, exitInfoToJson(e).dump() + "\n");
    report(json{{"error", msg}});
    fprintf(stderr, "mercato-shim %s: %s\n", o.id.c_str(), msg.c_str());
    return 1;
  };

  if (Status st = writeFileAtomic(o.shimPidFile, std::to_string(getpid()) + "\n", false);
      !st.isOk())
    return fail(st.message());
  auto outLog = RotatingLogWriter::open(o.stdoutLog, o.maxLogBytes, o.maxLogFiles);
  if (!outLog) return fail(outLog.status().message());
  auto errLog = RotatingLogWriter::open(o.stderrLog, o.maxLogBytes, o.maxLogFiles);
  if (!errLog) return fail(errLog.status().message());

  int outPipe[2], errPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) != 0 || pipe2(errPipe, O_CLOEXEC) != 0)
    return fail(std::string("pipe: ") + strerror(errno));
  std::vector<std::string> args = {o.runcBinary, "--root",   o.runcRoot,  "run", "--pid-file",
                                   o.pidFile,    "--bundle", o.bundleDir, o.id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {
      const_cast<char*>("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
      nullptr};
  int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  int64_t startedAt = nowMs();
  pid_t runc = fork();
  if (runc < 0) return fail(std::string("fork: ") + strerror(errno));
  if (runc == 0) {
    dup2(devNull, 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execve(argv[0], argv.data(), envp);
    const char msg[] = "mercato-shim: cannot execute runc\n";
    (void)!::write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  gRuncPid = runc;
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  ::close(devNull);

  int outFd = outPipe[0], errFd = errPipe[0];
  std::string earlyErr;  // stderr before the container started: runc's own errors
  int initPid = 0;
  bool oomKilled = false;
  int oomFd = -1;  // v1: eventfd registered on memory.oom_control; v2: inotify on memory.events
  bool runcExited = false;
  int runcStatus = 0;
  int64_t finishedAt = 0;

  auto checkOom = [&]() {
    auto n = readOomKills(o.cgroupsPath);
    if (n && *n > 0) oomKilled = true;
  };
  auto watchOom = [&]() {
    std::string dir = memoryCgroupDir(o.cgroupsPath);
    if (cgroupMode() == CgroupMode::kV1) {
      int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      int ofd = ::open((dir + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC);
      int cfd = ::open((dir + "/cgroup.event_control").c_str(), O_WRONLY | O_CLOEXEC);
      bool ok = efd >= 0 && ofd >= 0 && cfd >= 0;
      if (ok) {
        std::string line = std::to_string(efd) + " " + std::to_string(ofd);
        ok = ::write(cfd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
      }
      if (cfd >= 0) ::close(cfd);
      // ofd must stay open while the registration is live; it is closed at exit.
      if (ok)
        oomFd = efd;
      else {
        if (efd >= 0) ::close(efd);
        if (ofd >= 0) ::close(ofd);
      }
    } else {
      int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
      if (ifd >= 0 && inotify_add_watch(ifd, (dir + "/memory.events").c_str(), IN_MODIFY) >= 0)
        oomFd = ifd;
      else if (ifd >= 0)
        ::close(ifd);
    }
  };
  auto pollPidFile = [&]() {
    if (initPid > 0) return;
    auto pid = readPidFile(o.pidFile);
    if (!pid) return;
    initPid = *pid;
    watchOom();
    report(json{{"pid", initPid}, {"shimPid", getpid()}, {"startedAt", startedAt}});
  };

  char buf[65536];
  while (outFd >= 0 || errFd >= 0) {
    pollfd fds[3];
    int n = 0, iOut = -1, iErr = -1, iOom = -1;
    if (outFd >= 0) iOut = n, fds[n++] = {outFd, POLLIN, 0};
    if (errFd >= 0) iErr = n, fds[n++] = {errFd, POLLIN, 0};
    if (oomFd >= 0) iOom = n, fds[n++] = {oomFd, POLLIN, 0};
    int rc = poll(fds, n, initPid > 0 ? 1000 : 1);  // 1 ms: the pid file gates start latency
    if (rc < 0 && errno != EINTR) break;
    pollPidFile();
    if (rc <= 0) {
      // Pipes still open but runc gone (something inherited them): stop after a grace period.
      if (!runcExited) {
        pid_t w = waitpid(runc, &runcStatus, WNOHANG);
        if (w == runc) {
          runcExited = true;
          finishedAt = nowMs();
        }
      } else if (nowMs() - finishedAt > 2000) {
        break;
      }
      continue;
    }
    if (iOom >= 0 && (fds[iOom].revents & POLLIN)) {
      char ev[4096];
      (void)!::read(oomFd, ev, sizeof ev);
      // v1 also signals the eventfd when the cgroup is removed; only an event while the cgroup
      // still exists is an OOM.
      if (fs::exists(memoryCgroupDir(o.cgroupsPath))) {
        if (cgroupMode() == CgroupMode::kV1)
          oomKilled = true;
        else
          checkOom();
      }
      if (!fs::exists(memoryCgroupDir(o.cgroupsPath))) {
        ::close(oomFd);
        oomFd = -1;
      }
    }
    auto pump = [&](int idx, int& fd, RotatingLogWriter& log, bool isErr) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        std::string_view chunk(buf, static_cast<size_t>(r));
        if (isErr && initPid == 0 && earlyErr.size() < 65536) earlyErr.append(chunk);
        Status st = log.write(chunk);
        if (!st.isOk())
          fprintf(stderr, "mercato-shim %s: %s\n", o.id.c_str(), st.message().c_str());
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        // The container's output closes when its processes die, usually before runc removes
        // the cgroup: read the OOM counter now, in case the OOM event itself was missed (it
        // can fire before the watch is registered, or race the end of this loop).
        if (!oomKilled) checkOom();
        ::close(fd);
        fd = -1;
      }
    };
    pump(iOut, outFd, *outLog, false);
    pump(iErr, errFd, *errLog, true);
  }
  if (outFd >= 0) ::close(outFd);
  if (errFd >= 0) ::close(errFd);
  if (!runcExited) {
    while (waitpid(runc, &runcStatus, 0) < 0 && errno == EINTR) {
    }
    finishedAt = nowMs();
  }
  gRuncPid = 0;
  pollPidFile();  // a job that finished within one poll still had a pid

  ExitInfo e;
  e.startedAtMs = startedAt;
  e.finishedAtMs = finishedAt;
  e.oomKilled = oomKilled;
  if (WIFEXITED(runcStatus)) {
    e.exitCode = WEXITSTATUS(runcStatus);
    if (e.exitCode > 128 && e.exitCode <= 128 + 64) e.signal = e.exitCode - 128;
  } else if (WIFSIGNALED(runcStatus)) {
    e.signal = WTERMSIG(runcStatus);
    e.exitCode = 128 + e.signal;
  }
  if (initPid == 0) {
    std::string msg = std::string(trimSpace(earlyErr));
    if (msg.empty()) msg = "runc run exited with status " + std::to_string(e.exitCode);
    e.error = "runc run failed: " + msg;
  }
  // The exit file is complete before the launcher hears of a failure.
  Status written = writeFileAtomic(o.exitFile, exitInfoToJson(e).dump() + "\n");
  if (initPid == 0) report(json{{"error", e.error}});
  if (!written.isOk()) {
    fprintf(stderr, "mercato-shim %s: %s\n", o.id.c_str(), written.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace mercato::runtime::host
