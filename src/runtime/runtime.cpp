#include "runtime/runtime.hpp"

#include <regex>
#include <set>
#include <thread>

#include "runtime/runc/runc_runtime.hpp"

namespace mercato::runtime {

const char* workloadKindName(WorkloadKind k) { return k == WorkloadKind::kJob ? "job" : "service"; }

const char* restartPolicyName(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::kAlways:
      return "always";
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kNever:
      return "never";
  }
  return "?";
}

const char* instanceStateName(InstanceState s) {
  switch (s) {
    case InstanceState::kStarting:
      return "starting";
    case InstanceState::kRunning:
      return "running";
    case InstanceState::kBackoff:
      return "backoff";
    case InstanceState::kExited:
      return "exited";
    case InstanceState::kFailed:
      return "failed";
    case InstanceState::kStopped:
      return "stopped";
  }
  return "?";
}

Usage& Usage::operator+=(const Usage& o) {
  cpuSeconds += o.cpuSeconds;
  memoryGiBSeconds += o.memoryGiBSeconds;
  memoryPeakBytes = std::max(memoryPeakBytes, o.memoryPeakBytes);
  netRxBytes += o.netRxBytes;
  netTxBytes += o.netTxBytes;
  pids += o.pids;
  storageGiBSeconds += o.storageGiBSeconds;
  storageBytes += o.storageBytes;
  return *this;
}

Status Runtime::waitReady(const std::string& deployment, const std::string& service, int count,
                          std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (true) {
    ASSIGN_OR_RETURN(auto st, status(deployment));
    const ServiceStatus* svc = nullptr;
    for (const auto& s : st.services)
      if (s.name == service) svc = &s;
    if (!svc) return notFound("deployment " + deployment + " has no service " + service);
    if (svc->kind == WorkloadKind::kJob) {
      int done = 0;
      for (const auto& i : svc->instances)
        if (i.state == InstanceState::kExited || i.state == InstanceState::kFailed) ++done;
      if (done >= svc->replicas) return Status();
      last = std::to_string(done) + " of " + std::to_string(svc->replicas) + " finished";
    } else {
      if (svc->ready >= count) return Status();
      last = std::to_string(svc->ready) + " of " + std::to_string(count) + " ready";
      for (const auto& i : svc->instances)
        if (!i.message.empty()) last += "; " + i.id + ": " + i.message;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return deadlineExceeded("waiting for " + deployment + "/" + service + ": " + last);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

namespace {

bool validName(const std::string& s, size_t maxLen) {
  static const std::regex re("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$");
  return !s.empty() && s.size() <= maxLen && std::regex_match(s, re);
}

}  // namespace

Status validateSpec(const DeploymentSpec& spec) {
  if (!validName(spec.id, 40))
    return invalidArgument("deployment id '" + spec.id +
                           "': expected 1-40 characters of [a-z0-9-], starting and ending with "
                           "a letter or digit");
  if (spec.services.empty()) return invalidArgument("deployment " + spec.id + ": no services");
  std::set<std::string> names;
  for (size_t i = 0; i < spec.services.size(); ++i) {
    const auto& s = spec.services[i];
    std::string where = "services[" + std::to_string(i) + "]";
    if (!validName(s.name, 32))
      return invalidArgument(where + ".name '" + s.name +
                             "': expected 1-32 characters of [a-z0-9-]");
    where = "services." + s.name;
    if (!names.insert(s.name).second) return invalidArgument(where + ": duplicate service name");
    if (s.image.empty()) return invalidArgument(where + ".image: required");
    if (!s.imageLayout.empty() && s.imageLayout[0] != '/')
      return invalidArgument(where + ".imageLayout: '" + s.imageLayout +
                             "' is not an absolute path");
    if (s.replicas < 0 || s.replicas > 1000)
      return invalidArgument(where + ".replicas: " + std::to_string(s.replicas) +
                             " is outside 0..1000");
    if (s.resources.cpuMillis < 0)
      return invalidArgument(where + ".resources.cpu: must not be negative");
    if (s.resources.memoryBytes < 0)
      return invalidArgument(where + ".resources.memory: must not be negative");
    if (s.resources.pids < 0)
      return invalidArgument(where + ".resources.pids: must not be negative");
    if (s.resources.storageBytes < 0)
      return invalidArgument(where + ".resources.storage: must not be negative");
    std::set<uint16_t> ports;
    for (const auto& p : s.ports) {
      if (p.port == 0) return invalidArgument(where + ".ports: port 0 is not a port");
      if (p.protocol != "tcp" && p.protocol != "udp")
        return invalidArgument(where + ".ports." + std::to_string(p.port) + ": protocol '" +
                               p.protocol + "' (expected tcp or udp)");
      if (!ports.insert(p.port).second)
        return invalidArgument(where + ".ports: " + std::to_string(p.port) + " listed twice");
    }
    static const std::regex envRe("^[A-Za-z_][A-Za-z0-9_.-]*$");
    for (const auto& e : s.env)
      if (!std::regex_match(e.name, envRe))
        return invalidArgument(where + ".env: '" + e.name + "' is not a valid variable name");
  }
  return Status();
}

Result<std::unique_ptr<Runtime>> createRuntime(const RuntimeConfig& config) {
  using Factory = Result<std::unique_ptr<Runtime>> (*)(const RuntimeConfig&);
  static const std::vector<std::pair<std::string, Factory>> kBackends = {
      {"runc",
       [](const RuntimeConfig& c) -> Result<std::unique_ptr<Runtime>> {
         ASSIGN_OR_RETURN(auto r, runc::RuncRuntime::create(c));
         return std::unique_ptr<Runtime>(std::move(r));
       }},
  };
  std::string known;
  for (const auto& [name, factory] : kBackends) {
    if (name == config.backend) return factory(config);
    known += (known.empty() ? "" : ", ") + name;
  }
  return invalidArgument("unknown runtime backend '" + config.backend + "' (known: " + known + ")");
}

}  // namespace mercato::runtime
