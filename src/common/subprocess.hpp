// runProcess: runs a program to completion with bounded time and output, and returns how it
// ended. The one subprocess runner of the project: the runc backend's helpers (runc, CNI
// plugins, ip, iptables) and the bid engine's pricing scripts both go through it.
//
// - The child gets exactly stdin/stdout/stderr: every other descriptor of the caller is closed
//   between fork and exec (close_range), so a multithreaded daemon's sockets and pipes never
//   leak into the child. Between fork and exec the child only calls async-signal-safe functions.
// - With `ownProcessGroup` the child leads a new process group. A timeout or too much output
//   then kills the whole group (helpers it forked die with it), and whatever the leader leaves
//   behind in its group is killed once it exits.
// - A child that exits without reading its stdin cannot kill the caller: SIGPIPE is blocked on
//   the calling thread while it writes, and a pending one is consumed before it is unblocked.
//
// Timeouts are measured on the steady clock: a real child process cannot run on a FakeClock.
// Thread-safety: runProcess is reentrant; callbacks run on the calling thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato {

struct ProcessSpec {
  // argv[0] is the program; a name without '/' is looked up in PATH.
  std::vector<std::string> argv;
  // "KEY=VALUE" entries added to (and overriding) the inherited environment.
  std::vector<std::string> env;
  // When false the child sees only `env`.
  bool inheritEnv = true;
  // Written to the child's stdin, which is then closed. Empty: stdin is /dev/null.
  std::string stdinData;
  // Killed when it runs longer than this (see onTimeout).
  std::optional<std::chrono::milliseconds> timeout;
  // Called once on timeout with the child's pid instead of the default kill (SIGKILL to the
  // child, or to its group with ownProcessGroup). Still running 2 s later: SIGKILLed anyway.
  std::function<void(pid_t)> onTimeout;
  // See the header comment.
  bool ownProcessGroup = false;
  // When set, output is streamed to these callbacks instead of being captured.
  std::function<void(std::string_view)> onStdout;
  std::function<void(std::string_view)> onStderr;
  // Captured output beyond these sizes is dropped...
  size_t maxStdout = 16u << 20;
  size_t maxStderr = 16u << 20;
  // ...unless this is set: then stdout beyond maxStdout kills the child (its group with
  // ownProcessGroup) and sets ProcessResult::outputTooLarge.
  bool killOnStdoutOverflow = false;
};

struct ProcessResult {
  int exitCode = -1;  // exit status when the child exited normally, else -1
  int signal = 0;     // terminating signal, 0 when it exited normally
  bool timedOut = false;
  bool outputTooLarge = false;  // killOnStdoutOverflow fired
  std::string out;              // captured stdout (empty when streamed)
  std::string err;              // captured stderr (empty when streamed)
  std::chrono::microseconds elapsed{0};

  bool ok() const { return exitCode == 0 && !timedOut && !outputTooLarge; }
  // "exit status 3" / "killed by signal 9" / "timed out after 2000 ms" / "printed more
  // output than allowed".
  std::string describe() const;
};

// Runs the program and waits for it. Fails only when the program can't be started (kNotFound:
// missing or not executable; kInternal: pipe or fork failure); how it ended is in the result.
Result<ProcessResult> runProcess(const ProcessSpec& spec);

// "cmd arg1 arg2" for error messages.
std::string commandLine(const std::vector<std::string>& argv);

// A status for a helper that failed: "<what>: `cmd` exit status 1: <stderr, trimmed>".
Status processFailure(std::string_view what, const std::vector<std::string>& argv,
                      const ProcessResult& r);

}  // namespace mercato
