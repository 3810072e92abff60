// ScriptRunner: runs a pricing script to completion with hard limits, for the `script` pricing
// strategy.
//
// The script is untrusted as far as the engine is concerned (an operator's program that may
// hang, crash, fork helpers or print megabytes), so every run is bounded:
//   - the child is the leader of its own process group, and on timeout or on too much output
//     the whole group gets SIGKILL (helpers it forked die with it);
//   - stdout is captured up to maxOutputBytes (more is an error, not a truncation); stderr is
//     kept up to 4 KiB for the log;
//   - every descriptor of the daemon except stdin/stdout/stderr is closed before exec.
//
// Why not runtime/runc/host/subprocess: that helper is part of the runc backend (a provider
// must not include a backend header), it does not put the child in its own process group, and
// it caps output by dropping the tail rather than failing.
//
// Timeouts are measured on the steady clock: a real child process cannot run on a FakeClock.
// Thread-safety: runScript is reentrant and may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace mercato::provider::bidengine {

struct ScriptSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path or a name looked up in PATH
  std::string stdinData;
  std::chrono::milliseconds timeout{2000};
  size_t maxOutputBytes = 64 * 1024;
};

struct ScriptResult {
  int exitCode = -1;  // when it exited normally
  int signal = 0;     // the terminating signal, 0 when it exited normally
  bool timedOut = false;
  bool outputTooLarge = false;
  std::string out;  // stdout (at most maxOutputBytes)
  std::string err;  // the first 4 KiB of stderr
  std::chrono::microseconds elapsed{0};
  // "exit status 3", "killed by signal 11", "timed out after 2000 ms", ...
  std::string describe() const;
};

// Runs the script and waits for it (at most timeout + ~1 s of cleanup). Fails only when it
// cannot be started (kNotFound: missing or not executable; kInternal: pipe/fork failure); how
// the script ended is in the ScriptResult.
Result<ScriptResult> runScript(const ScriptSpec& spec);

}  // namespace mercato::provider::bidengine
