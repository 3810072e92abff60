// Runtime: the cluster-backend interface. A provider runs publishers' workloads through it; the
// intake, the facade (scale-to-zero), metering and settlement only ever see this header.
//
// Backends (the name -> create() table is in runtime.cpp):
//   "runc"       — one machine: OCI images pulled from any registry, containers run by runc
//                  under a per-instance shim, CNI bridge networking with one isolated bridge
//                  per deployment, cgroup + veth metering (runtime/runc/).
//   "kubernetes" — joins the table in a later issue.
//
// Model. A deployment is a set of services (components). A service of kind kService is
// long-running: it keeps `replicas` instances up and restarts them with exponential backoff per
// its RestartPolicy. A kJob runs each instance to completion and reports exit code and duration.
// Instances are numbered per service; an instance id is "<deployment>.<service>.<ordinal>".
//
// Usage is cumulative per instance over the instance's life (exited instances included) and
// is what settlement bills from; stats() rolls it up per deployment.
//
// Thread-safety: every method may be called from any thread. Methods that start or stop
// containers block the caller while runc and CNI run (tens of ms); call them from a worker, not
// from an event loop. Log and event callbacks run on the caller's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/status.hpp"

namespace mercato::runtime {

enum class WorkloadKind { kService, kJob };
enum class RestartPolicy { kAlways, kOnFailure, kNever };

const char* workloadKindName(WorkloadKind k);
const char* restartPolicyName(RestartPolicy p);

struct PortSpec {
  uint16_t port = 0;
  std::string protocol = "tcp";
  std::string name;
};

struct EnvVar {
  std::string name;
  std::string value;
  bool secret = false;  // never logged, never shown in status or events
};

struct ResourceLimits {
  int64_t cpuMillis = 0;    // 0 = unlimited
  int64_t memoryBytes = 0;  // 0 = unlimited
  int64_t pids = 0;         // 0 = backend default
  // Writable-layer size (the rootfs's changes, /tmp and logs written inside). A hard limit: the
  // instance sees ENOSPC there. 0 = the backend's default (1 GiB for runc).
  int64_t storageBytes = 0;
};

struct ServiceSpec {
  std::string name;  // [a-z0-9-]{1,32}
  WorkloadKind kind = WorkloadKind::kService;
  // A registry reference ("127.0.0.1:5000/app/web:v1", "busybox@sha256:..."), always pulled,
  // whatever it looks like. An image that arrived bundled is named by `imageLayout` instead.
  std::string image;
  // The host path of an OCI image layout (dir or tar) that the provider itself stored, for a
  // bundled image; `image` is then only its display name ("bundle:<component>"). Set out of band
  // by the provider's intake or the operator's runtime API, never from a tenant's manifest, so
  // no string a tenant writes can make the runtime open a host path.
  std::string imageLayout;
  std::vector<std::string> command;  // replaces the image's Entrypoint when set
  std::vector<std::string> args;     // replaces the image's Cmd when set
  std::vector<EnvVar> env;           // added to (and overriding) the image's Env
  std::string workingDir;            // overrides the image's WorkingDir
  std::string user;                  // "uid[:gid]" or a name in the image's /etc/passwd
  ResourceLimits resources;
  std::vector<PortSpec> ports;           // empty = the image's ExposedPorts
  int replicas = 1;                      // instances to keep (kService) or to run (kJob); 0 allowed
  std::optional<RestartPolicy> restart;  // default: kAlways for services, kNever for jobs
  bool readOnlyRootfs = false;
};

struct DeploymentSpec {
  std::string id;     // [a-z0-9-]{1,40}, unique on this provider
  std::string owner;  // the publisher's address, for status and events
  std::vector<ServiceSpec> services;
  std::map<std::string, std::string> labels;
};

enum class InstanceState { kStarting, kRunning, kBackoff, kExited, kFailed, kStopped };
const char* instanceStateName(InstanceState s);

struct InstanceStatus {
  std::string id;  // "<deployment>.<service>.<ordinal>"
  std::string service;
  int ordinal = 0;
  InstanceState state = InstanceState::kStarting;
  bool ready = false;  // running, and every port accepts connections
  std::string ip;      // reachable from the host (the facade proxies to ip:port)
  std::vector<PortSpec> ports;
  int64_t startedAtMs = 0;
  int64_t finishedAtMs = 0;  // 0 while running
  std::optional<int> exitCode;
  std::optional<int> signal;  // set when killed by a signal
  bool oomKilled = false;
  int restarts = 0;
  std::string message;  // why it failed or waits
};

struct ServiceStatus {
  std::string name;
  WorkloadKind kind = WorkloadKind::kService;
  std::string imageDigest;
  int replicas = 0;  // desired
  int ready = 0;
  std::vector<InstanceStatus> instances;
};

struct DeploymentStatus {
  std::string id;
  std::string owner;
  std::string state;  // "running", "stopped", "failed"
  int64_t createdAtMs = 0;
  std::vector<ServiceStatus> services;
};

// Cumulative usage. CPU from the cgroup's cpuacct, memory sampled from the cgroup at the
// sampling interval (integrated into GiB-seconds) and at stop, network from the host side of
// the instance's veth (tx = bytes the instance sent).
struct Usage {
  double cpuSeconds = 0;
  double memoryGiBSeconds = 0;
  int64_t memoryPeakBytes = 0;
  int64_t netRxBytes = 0;
  int64_t netTxBytes = 0;
  int64_t pids = 0;  // current (0 once stopped)
  // Bytes written to the instance's writable layer (its disk), integrated over time like memory.
  double storageGiBSeconds = 0;
  int64_t storageBytes = 0;  // current (0 once stopped)
  Usage& operator+=(const Usage& o);
};

struct InstanceStats {
  std::string instance;
  bool running = false;
  int64_t memoryBytes = 0;  // current
  Usage usage;
};

struct DeploymentStats {
  std::string deployment;
  int64_t sampledAtMs = 0;
  Usage total;  // every instance the deployment ever had
  std::vector<InstanceStats> instances;
};

struct LogOptions {
  std::string service;   // "" = all services
  std::string instance;  // "" = all instances (of `service`)
  size_t tail = 100;     // lines of history per instance and stream
  bool follow = false;   // keep streaming until the sink returns false or the instance ends
  bool stdoutStream = true;
  bool stderrStream = true;
  // Polled while following; returning true ends the stream (client gone, shutdown).
  std::function<bool()> cancelled;
};

struct LogLine {
  std::string instance;
  std::string stream;  // "stdout" | "stderr"
  std::string text;
};
// Returns false to stop.
using LogSink = std::function<bool(const LogLine&)>;

struct ExecRequest {
  std::string deployment;
  std::string service;  // the first running instance of it, unless `instance` is set
  std::string instance;
  std::vector<std::string> args;
  std::chrono::milliseconds timeout{30'000};
};

struct ExecResult {
  int exitCode = 0;
  std::string stdoutText;
  std::string stderrText;
};

// An interactive command in a running instance: stdin attached, output streamed as it comes.
struct ExecSessionRequest {
  std::string deployment;
  std::string service;  // the first running instance of it, unless `instance` is set
  std::string instance;
  std::vector<std::string> args;
  // With a TTY the process gets a pseudo-terminal of rows x cols: stdout and stderr arrive
  // merged on kStdout, and resize() works. Without, stdin/stdout/stderr are pipes.
  bool tty = false;
  uint16_t rows = 24;
  uint16_t cols = 80;
  std::vector<std::string> env;  // "KEY=VALUE", e.g. TERM=xterm-256color
};

enum class ExecStream { kStdout, kStderr };

// Called on the session's own thread, in order, never concurrently: output pieces, then onExit
// exactly once (also after terminate()).
struct ExecSessionCallbacks {
  std::function<void(ExecStream stream, std::string_view data)> onOutput;
  // exitCode is the process's exit status, 128+N when a signal N ended it.
  std::function<void(int exitCode)> onExit;
};

// One running interactive process. Destroying it terminates the process (if still running) and
// waits for the session's thread, after which no callback runs.
// Thread-safety: every method may be called from any thread, including from the callbacks.
class ExecSession {
 public:
  virtual ~ExecSession() = default;
  virtual const std::string& instance() const = 0;  // the instance it runs in
  // Queues bytes for the process's stdin; never blocks.
  virtual void writeStdin(std::string data) = 0;
  // Closes stdin once the queued bytes are written (EOF for the process). With a TTY this
  // sends the terminal's EOF character (^D) instead.
  virtual void closeStdin() = 0;
  // kFailedPrecondition without a TTY.
  virtual Status resize(uint16_t rows, uint16_t cols) = 0;
  // Kills the process (SIGKILL); onExit follows. Idempotent.
  virtual void terminate() = 0;
};

struct RuntimeEvent {
  uint64_t seq = 0;
  int64_t atMs = 0;
  std::string deployment;
  std::string service;
  std::string instance;
  // deployed, started, ready, exited, restarting, oom, scaled, stopped, removed, failed,
  // adopted (after a restart of the daemon), orphan-removed
  std::string type;
  std::string message;
};

struct Capabilities {
  std::string backend;
  bool scaleToZero = false;
  bool exec = false;
  bool execSession = false;  // startExec(): interactive, stdin attached
  bool execTty = false;      // startExec() with tty = true
  bool networkIsolation = false;
  bool gpu = false;
  bool jobs = false;
  bool logFollow = false;
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  virtual Capabilities capabilities() const = 0;

  // Validates the spec, fetches every image, then starts the instances. Bad specs, missing
  // images and impossible limits fail before anything runs, and leave nothing behind.
  // kAlreadyExists for a deployment id in use.
  virtual Status deploy(const DeploymentSpec& spec) = 0;
  // Sets a service's replica count (0 = scale to zero; the network and images stay ready).
  virtual Status scale(const std::string& deployment, const std::string& service, int replicas) = 0;
  // Stops every instance and keeps the deployment (scale() brings it back).
  virtual Status stop(const std::string& deployment) = 0;
  // Stops every instance and frees everything: network, rootfs copies, cgroups. Usage
  // recorded so far stays readable through stats() until the data dir is wiped.
  virtual Status remove(const std::string& deployment) = 0;

  virtual Result<DeploymentStatus> status(const std::string& deployment) = 0;
  virtual Result<std::vector<DeploymentStatus>> list() = 0;
  virtual Result<DeploymentStats> stats(const std::string& deployment) = 0;

  // Streams log lines: the last `tail` lines of each selected instance, then (follow) new ones.
  virtual Status logs(const std::string& deployment, const LogOptions& options,
                      const LogSink& sink) = 0;

  // Runs a command inside a running instance.
  virtual Result<ExecResult> exec(const ExecRequest& request) {
    return unimplemented(capabilities().backend + " runtime does not support exec");
  }

  // Starts an interactive command inside a running instance and returns at once; output and
  // the exit code arrive through `callbacks`. Errors: kNotFound (deployment), kFailedPrecondition
  // (no running instance), kInvalidArgument (empty args), kUnimplemented when the backend can't.
  virtual Result<std::unique_ptr<ExecSession>> startExec(const ExecSessionRequest& request,
                                                         ExecSessionCallbacks callbacks) {
    return unimplemented(capabilities().backend + " runtime does not support interactive exec");
  }

  // Events with seq > after, oldest first; waits up to waitMs for the first one.
  virtual Result<std::vector<RuntimeEvent>> events(uint64_t after, size_t limit,
                                                   int64_t waitMs) = 0;

  // Waits until `count` instances of the service are ready (0 for jobs: until all finished).
  Status waitReady(const std::string& deployment, const std::string& service, int count,
                   std::chrono::milliseconds timeout);
};

// The tenant sandbox: what a provider may relax or allow for every deployment it runs. It comes
// from provider.yaml (`sandbox:`), never from a tenant's manifest (docs/runc-host.md).
struct SandboxConfig {
  // Seccomp groups of the default profile to allow anyway ("ptrace", ...); an unknown group is an
  // error at create().
  std::vector<std::string> seccompAllow;
  // Destinations (IPv4/IPv6 CIDRs) an instance may reach although they are in the ranges that are
  // dropped by default (RFC 1918, 169.254/16, 100.64/10, ULA, link-local, the host's addresses).
  std::vector<std::string> egressAllow;
  // Nameservers written into instances' resolv.conf and reachable on port 53 (udp and tcp).
  // Empty: the host's own, minus loopback stubs.
  std::vector<std::string> nameservers;
  // Each deployment runs in its own uid/gid range (container root is an unprivileged host uid).
  bool userNamespaces = true;
  // Each instance's writable layer lives on a filesystem of its own size (ResourceLimits::storage).
  bool diskQuotas = true;
  // Size of an instance's writable layer when its spec sets none.
  int64_t defaultStorageBytes = int64_t{1} << 30;
  // Host-wide, durable claims of uid/gid ranges, shared by every runtime on this host.
  std::string idRangeClaimsDir = "/var/lib/mercato/id-ranges";
};

struct RuntimeConfig {
  std::string backend = "runc";
  SandboxConfig sandbox;
  std::string dataDir;  // state, images, instance dirs
  Clock* clock = nullptr;
  MetricsRegistry* metrics = nullptr;  // optional

  // runc backend
  std::string runcBinary = "runc";
  std::string shimBinary;  // "" = mercato-shim next to the running executable
  std::string cniPluginDir = "/usr/lib/cni";
  std::string subnetPool = "10.89.0.0/16";  // one /24 per deployment
  int64_t sampleIntervalMs = 10'000;        // metering
  int64_t superviseIntervalMs = 100;        // exit and readiness checks
  int64_t restartBackoffMs = 1'000;         // doubles per consecutive failure
  int64_t restartBackoffMaxMs = 60'000;
  int64_t stopGraceMs = 10'000;     // SIGTERM, then SIGKILL after this
  uint64_t logMaxBytes = 10 << 20;  // per file, before rotation
  int logMaxFiles = 3;
  uint64_t imageCacheBytes = 20ull << 30;
  uint64_t imageMaxBytes = 8ull << 30;  // unpacked size per image
  std::vector<std::string> insecureRegistries;
};

// Creates the backend named by config.backend; an unknown name is an error listing the known.
Result<std::unique_ptr<Runtime>> createRuntime(const RuntimeConfig& config);

// Checks the parts of a spec every backend agrees on (ids, names, replicas, ports, env names).
Status validateSpec(const DeploymentSpec& spec);

}  // namespace mercato::runtime
