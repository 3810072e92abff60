// Subprocess: runs a helper program (runc, a CNI plugin, ip, iptables) to completion and
// returns its exit status and output.
//
// The child gets exactly stdin/stdout/stderr: every other descriptor of the caller is closed
// between fork and exec (close_range), so a multithreaded daemon's sockets and pipes never leak
// into runc or a container. Between fork and exec the child only calls async-signal-safe
// functions, so this is safe to call from any thread of a multithreaded process.
//
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

namespace mercato::runtime::host {

struct ProcessSpec {
  // argv[0] is the program; a name without '/' is looked up in PATH.
  std::vector<std::string> argv;
  // "KEY=VALUE" entries added to (and overriding) the inherited environment.
  std::vector<std::string> env;
  // When false the child sees only `env`.
  bool inheritEnv = true;
  // Written to the child's stdin, which is then closed. Empty: stdin is /dev/null.
  std::string stdinData;
  // Killed (see onTimeout) when it runs longer than this.
  std::optional<std::chrono::milliseconds> timeout;
  // Called once on timeout with the child's pid; the default sends SIGKILL to the child. If the
  // child is still running 2 s after onTimeout, it is SIGKILLed anyway.
  std::function<void(pid_t)> onTimeout;
  // When set, output is streamed to these callbacks instead of being captured.
  std::function<void(std::string_view)> onStdout;
  std::function<void(std::string_view)> onStderr;
  // Captured output beyond this many bytes per stream is dropped (the tail is kept short).
  size_t maxCapture = 16u << 20;
};

struct ProcessResult {
  int exitCode = -1;  // exit status when the child exited normally, else -1
  int signal = 0;     // terminating signal, 0 when it exited normally
  bool timedOut = false;
  std::string out;  // captured stdout (empty when streamed)
  std::string err;  // captured stderr (empty when streamed)

  bool ok() const { return exitCode == 0; }
  // "exit status 3" / "killed by signal 9" / "timed out (killed by signal 9)".
  std::string describe() const;
};

// Runs the program and waits for it. Fails only when the program can't be started (missing
// binary, fork failure); a non-zero exit is reported in the ProcessResult.
Result<ProcessResult> runProcess(const ProcessSpec& spec);

// "cmd arg1 arg2" for error messages.
std::string commandLine(const std::vector<std::string>& argv);

// A status for a helper that failed: "<what>: `cmd` exit status 1: <stderr, trimmed>".
Status processFailure(std::string_view what, const std::vector<std::string>& argv,
                      const ProcessResult& r);

}  // namespace mercato::runtime::host
