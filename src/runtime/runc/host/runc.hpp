// Runc: a thin wrapper over the runc CLI with a dedicated state root (`runc --root <root>`), so
// mercato's containers never mix with other users of runc on the host.
//
// Every call runs runc as a child process and parses its JSON output. Failures carry runc's
// stderr. Starting containers is not here: the shim (shim.hpp) owns `runc run`.
//
// Thread-safety: a Runc holds only paths; concurrent calls are safe (runc locks per container).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::host {

inline constexpr const char* kDefaultRuncBinary = "/usr/sbin/runc";
inline constexpr const char* kDefaultRuncRoot = "/run/mercato/runc";

// One entry of `runc list --format json` / `runc state`.
struct RuncContainerState {
  std::string id;
  int pid = 0;         // init pid on the host; 0 once stopped
  std::string status;  // "created", "running", "paused", "stopped"
  std::string bundle;  // bundle directory
  std::string rootfs;
  std::string created;  // RFC 3339 timestamp as runc prints it
  std::string owner;
};

// Parsers of runc's output; exposed for the fuzz target. Malformed input is kInternal with the
// reason, never a crash.
Result<std::vector<RuncContainerState>> parseRuncList(std::string_view json);
Result<RuncContainerState> parseRuncState(std::string_view json);

struct ExecOptions {
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=VALUE", added to the container's process env
  std::string cwd;               // empty: the container's cwd
  std::string user;              // empty: the container's user; else "uid[:gid]" numeric
  std::optional<std::chrono::milliseconds> timeout;  // the exec'd process is SIGKILLed after it
};

struct ExecResult {
  int exitCode = -1;  // the process's exit status; 128+N when killed by signal N
  bool timedOut = false;
  std::string stdoutData;
  std::string stderrData;
};

class Runc {
 public:
  explicit Runc(std::string binary = kDefaultRuncBinary, std::string root = kDefaultRuncRoot);

  const std::string& binary() const { return binary_; }
  const std::string& root() const { return root_; }
  // The common prefix of every runc command: {binary, "--root", root}.
  std::vector<std::string> baseArgs() const;

  // All containers under the root (empty when the root doesn't exist yet).
  Result<std::vector<RuncContainerState>> list() const;
  // kNotFound when runc doesn't know the id.
  Result<RuncContainerState> state(const std::string& id) const;
  // Sends `signal` (a number) to the init process, or to every process when `all`.
  // kNotFound when the container doesn't exist; killing a stopped container is OK.
  Status kill(const std::string& id, int signal, bool all = false) const;
  // `runc delete [--force]`. A container that doesn't exist is OK (idempotent).
  Status remove(const std::string& id, bool force = false) const;
  Status pause(const std::string& id) const;
  Status resume(const std::string& id) const;

  // Runs a process in the container and captures its output. Fails (kInternal) only when runc
  // could not start the process; the process's own non-zero exit is in ExecResult.
  Result<ExecResult> exec(const std::string& id, const ExecOptions& options) const;
  // Streaming variant: output goes to the callbacks as it arrives (on the calling thread).
  // Returns the exit code as exec() does.
  Result<ExecResult> execStreaming(const std::string& id, const ExecOptions& options,
                                   std::function<void(std::string_view)> onStdout,
                                   std::function<void(std::string_view)> onStderr) const;

 private:
  std::string binary_;
  std::string root_;
};

}  // namespace mercato::runtime::host
