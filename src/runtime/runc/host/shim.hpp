// Shim: the per-container supervisor process (like conmon) that lets the backend die and come
// back without losing its containers, their logs or their exit codes.
//
// startContainer() double-forks and setsid()s `mercato-shim`, which is then re-parented to init
// and shares nothing with the caller but the files named in ShimOptions. The shim runs
// `runc run --pid-file P --bundle B ID` in the foreground with stdout/stderr on pipes, pumps
// them into rotating log files, and when runc exits it atomically writes the exit file
// (JSON, see ExitInfo). It ignores SIGHUP and SIGPIPE and forwards SIGTERM/SIGINT to runc
// (which forwards them to the container). Files the shim writes:
//   shimPidFile  the shim's pid, written first
//   pidFile      the container's init pid (written by runc)
//   stdoutLog / stderrLog (+ .1, .2, ...)   the container's output
//   exitFile     written once, when the container is gone
//   shimLog      the shim's own diagnostics
// Start-up is synchronised over a pipe: startContainer returns when the init pid is known, or
// fails with runc's stderr (also recorded in the exit file's "error").
//
// Thread-safety: startContainer may be called from any thread (fork-safe: nothing but
// async-signal-safe calls between fork and exec). The other functions are pure or read files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "runtime/runc/host/runc.hpp"

namespace mercato::runtime::host {

struct ShimOptions {
  std::string shimBinary;  // path of mercato-shim
  std::string runcBinary = kDefaultRuncBinary;
  std::string runcRoot = kDefaultRuncRoot;
  std::string id;
  std::string bundleDir;    // holds config.json
  std::string stdoutLog;    // required
  std::string stderrLog;    // required
  std::string exitFile;     // required; must not exist yet
  std::string pidFile;      // default <bundleDir>/container.pid
  std::string shimPidFile;  // default <bundleDir>/shim.pid
  std::string shimLog;      // default <bundleDir>/shim.log
  // The container's cgroup (as in config.json), watched for OOM kills. Default /mercato/<id>.
  std::string cgroupsPath;
  uint64_t maxLogBytes = 10u << 20;
  int maxLogFiles = 3;
  std::chrono::milliseconds startTimeout{30000};
};

// Fills the defaults above. Fails when a required field is missing.
Result<ShimOptions> withShimDefaults(ShimOptions options);
nlohmann::json shimOptionsToJson(const ShimOptions& options);
Result<ShimOptions> shimOptionsFromJson(std::string_view text);

struct StartedContainer {
  int initPid = 0;  // the container's init process on the host
  int shimPid = 0;
  int64_t startedAtMs = 0;  // Unix ms, when runc was started
};

// Launches the shim and waits until the container runs. Errors: kInvalidArgument (options),
// kAlreadyExists (exit file present), kNotFound (shim binary), kInternal with runc's stderr when
// the container could not start, kDeadlineExceeded after startTimeout (the shim is killed).
Result<StartedContainer> startContainer(const ShimOptions& options);

struct ExitInfo {
  int exitCode = -1;  // runc's exit status: the process's status, 128+N when killed by signal N
  int signal = 0;     // N when the process was killed by signal N, else 0
  bool oomKilled = false;  // the kernel's OOM killer fired in the container's memory cgroup
  int64_t startedAtMs = 0;
  int64_t finishedAtMs = 0;
  std::string error;  // set when runc failed before the container started
};

nlohmann::json exitInfoToJson(const ExitInfo& info);
// Parses the exit file's JSON (kInternal on malformed input; used by the fuzz target too).
Result<ExitInfo> parseExitInfo(std::string_view text);
// kNotFound while the container is still running (no exit file yet).
Result<ExitInfo> readExitFile(const std::string& path);

// Reads a pid file (runc's or the shim's). kNotFound when absent, kInternal when garbled.
Result<int> readPidFile(const std::string& path);
// True when a process with this pid exists (kill(pid, 0)); a zombie counts as alive.
bool processExists(int pid);

// The shim's main loop (mercato-shim's main calls it). `syncFd` receives one JSON line
// ({"pid":N} or {"error":"..."}) and is closed; -1 for none. Returns the process exit code.
int runShim(const ShimOptions& options, int syncFd);

}  // namespace mercato::runtime::host
