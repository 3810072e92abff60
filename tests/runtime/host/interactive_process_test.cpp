// InteractiveProcess on ordinary host programs (no root): stdin in, stdout/stderr out, EOF, the
// exit status, a pseudo-terminal with its size and resize, and terminate().
#include "runtime/runc/host/interactive_process.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace mercato::runtime::host {
namespace {

using namespace std::chrono_literals;

// Collects a process's output and exit; waits on a condition variable, never sleeps.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::string out, err;
  std::optional<int> status;

  InteractiveOptions options(std::vector<std::string> argv, bool tty = false) {
    InteractiveOptions o;
    o.argv = std::move(argv);
    o.tty = tty;
    o.onOutput = [this](int fd, std::string_view data) {
      std::lock_guard lock(mu);
      (fd == 2 ? err : out).append(data);
      cv.notify_all();
    };
    o.onExit = [this](int s) {
      std::lock_guard lock(mu);
      status = s;
      cv.notify_all();
    };
    return o;
  }
  bool waitFor(const std::string& text) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return out.find(text) != std::string::npos; });
  }
  std::optional<int> waitExit() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return status.has_value(); });
    return status;
  }
};

TEST(InteractiveProcess, PipesCarryInputOutputAndExitStatus) {
  Collector c;
  auto p = InteractiveProcess::start(
      c.options({"/bin/sh", "-c", "read a; echo got:$a; echo warn >&2; cat; exit 7"}));
  ASSERT_TRUE(p.isOk()) << p.status().message();
  (*p)->write("first\n");
  ASSERT_TRUE(c.waitFor("got:first\n"));
  (*p)->write("rest of the input\n");
  (*p)->closeInput();  // cat sees EOF
  EXPECT_EQ(c.waitExit(), 7);
  std::lock_guard lock(c.mu);
  EXPECT_EQ(c.out, "got:first\nrest of the input\n");
  EXPECT_EQ(c.err, "warn\n");
}

TEST(InteractiveProcess, TtyHasTheSizeAskedAndFollowsResize) {
  Collector c;
  auto o = c.options({"/bin/sh"}, /*tty=*/true);
  o.rows = 33;
  o.cols = 111;
  auto p = InteractiveProcess::start(std::move(o));
  ASSERT_TRUE(p.isOk()) << p.status().message();
  (*p)->write("/bin/busybox stty size; echo e\"\"rr-line >&2; echo MA\"\"RK1\n");
  ASSERT_TRUE(c.waitFor("MARK1\r\n"));
  {
    std::lock_guard lock(c.mu);
    EXPECT_NE(c.out.find("33 111"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("err-line"), std::string::npos) << "one merged output on a terminal";
    EXPECT_TRUE(c.err.empty());
  }
  ASSERT_TRUE((*p)->resize(44, 122).isOk());
  (*p)->write("/bin/busybox stty size; echo MA\"\"RK2\n");
  ASSERT_TRUE(c.waitFor("MARK2\r\n"));
  {
    std::lock_guard lock(c.mu);
    EXPECT_NE(c.out.find("44 122"), std::string::npos) << c.out;
  }
  (*p)->closeInput();  // ^D ends the shell
  EXPECT_EQ(c.waitExit(), 0);
}

TEST(InteractiveProcess, TerminateKillsAndReportsTheSignal) {
  Collector c;
  auto p = InteractiveProcess::start(c.options({"/bin/sh", "-c", "echo up; exec sleep 600"}));
  ASSERT_TRUE(p.isOk());
  ASSERT_TRUE(c.waitFor("up\n"));
  EXPECT_FALSE((*p)->resize(10, 10).isOk()) << "no terminal: resize is refused";
  (*p)->terminate();
  EXPECT_EQ(c.waitExit(), 128 + 9);
}

TEST(InteractiveProcess, ExitWhileAGrandchildHoldsTheOutputStillEnds) {
  Collector c;
  auto p = InteractiveProcess::start(c.options({"/bin/sh", "-c", "sleep 3 & echo bye"}));
  ASSERT_TRUE(p.isOk());
  EXPECT_EQ(c.waitExit(), 0);
  std::lock_guard lock(c.mu);
  EXPECT_EQ(c.out, "bye\n");
}

TEST(InteractiveProcess, RejectsARelativeProgram) {
  Collector c;
  EXPECT_EQ(InteractiveProcess::start(c.options({"sh"})).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mercato::runtime::host
