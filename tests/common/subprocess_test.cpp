// runProcess on real child processes: status, output, environment, timeouts, process groups,
// output limits, a child that ignores its stdin, and no descriptor leaks.
#include "common/subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace mercato {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// True while `pid` exists and is not a zombie.
bool alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

TEST(Subprocess, CapturesStatusOutputAndEnvironment) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "read x; echo out:$x; echo err:$FOO >&2; exit 5"};
  spec.env = {"FOO=bar"};
  spec.stdinData = "hello\n";
  auto r = runProcess(spec);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->exitCode, 5);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->out, "out:hello\n");
  EXPECT_EQ(r->err, "err:bar\n");
  Status failure = processFailure("demo", spec.argv, *r);
  EXPECT_NE(failure.message().find("exit status 5: err:bar"), std::string::npos);

  ProcessSpec clean;
  clean.argv = {"sh", "-c", "echo ${HOME:-none}"};
  clean.inheritEnv = false;
  r = runProcess(clean);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->out, "none\n");

  ProcessSpec missing;
  missing.argv = {"/no/such/program"};
  EXPECT_EQ(runProcess(missing).status().code(), Code::kNotFound);
  missing.argv = {"no-such-program-in-path"};
  EXPECT_EQ(runProcess(missing).status().code(), Code::kNotFound);
}

TEST(Subprocess, TimeoutKillsTheChild) {
  ProcessSpec slow;
  slow.argv = {"sleep", "10"};
  slow.timeout = 100ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = runProcess(slow);
  ASSERT_TRUE(r.isOk());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(r->timedOut);
  EXPECT_EQ(r->signal, 9);
  EXPECT_NE(r->describe().find("timed out after"), std::string::npos) << r->describe();
  EXPECT_EQ(processFailure("slow", slow.argv, *r).code(), Code::kDeadlineExceeded);
}

// A child that closed its output but runs on is still bound by the timeout.
TEST(Subprocess, TimeoutAlsoCoversAChildThatClosedItsOutput) {
  ProcessSpec quiet;
  quiet.argv = {"sh", "-c", "exec >/dev/null 2>&1; sleep 10"};
  quiet.timeout = 200ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = runProcess(quiet);
  ASSERT_TRUE(r.isOk());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(r->timedOut);
}

TEST(Subprocess, OwnProcessGroupTimeoutKillsTheHelpersToo) {
  const fs::path pidFile =
      fs::temp_directory_path() / ("mercato-subproc-" + std::to_string(getpid()) + ".pid");
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "sleep 30 & echo $! > " + pidFile.string() + "; wait"};
  spec.ownProcessGroup = true;
  spec.timeout = 300ms;
  auto r = runProcess(spec);
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->timedOut);
  std::ifstream in(pidFile);
  pid_t helper = 0;
  in >> helper;
  fs::remove(pidFile);
  ASSERT_GT(helper, 0);
  for (int i = 0; i < 100 && alive(helper); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(alive(helper)) << "the helper " << helper << " outlived its group";
}

TEST(Subprocess, OutputLimitsTruncateOrKill) {
  ProcessSpec capped;
  capped.argv = {"sh", "-c", "head -c 100000 /dev/zero; head -c 50000 /dev/zero >&2"};
  capped.maxStdout = 1000;
  capped.maxStderr = 10;
  auto r = runProcess(capped);
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->ok());
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_EQ(r->err.size(), 10u);

  ProcessSpec flood;
  flood.argv = {"yes"};
  flood.maxStdout = 4096;
  flood.killOnStdoutOverflow = true;
  flood.ownProcessGroup = true;
  r = runProcess(flood);
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->outputTooLarge);
  EXPECT_FALSE(r->ok());
  EXPECT_LE(r->out.size(), 4096u);
  EXPECT_EQ(r->signal, 9);
}

// The child exits without reading a large stdin: the write gets EPIPE, not a SIGPIPE that
// would kill the caller, and no SIGPIPE is left pending on this thread.
TEST(Subprocess, AChildThatIgnoresItsStdinDoesNotKillTheCaller) {
  ProcessSpec spec;
  spec.argv = {"true"};
  spec.stdinData = std::string(4 << 20, 'x');
  auto r = runProcess(spec);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->exitCode, 0);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST(Subprocess, StreamsOutputToCallbacks) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo one; echo two >&2; echo three"};
  std::string out, err;
  spec.onStdout = [&](std::string_view s) { out += s; };
  spec.onStderr = [&](std::string_view s) { err += s; };
  auto r = runProcess(spec);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(out, "one\nthree\n");
  EXPECT_EQ(err, "two\n");
  EXPECT_TRUE(r->out.empty());
}

TEST(Subprocess, CallerDescriptorsDoNotLeakIntoTheChild) {
  int opened = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  int fd = ::dup2(opened, 100);
  ::close(opened);
  ProcessSpec ls;
  ls.argv = {"sh", "-c", "ls /proc/self/fd"};
  auto r = runProcess(ls);
  ::close(fd);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->out.find(std::to_string(fd) + "\n"), std::string::npos) << r->out;
}

}  // namespace
}  // namespace mercato
