// StateStore: the runc backend's durable state in SQLite (DATA_DIR/runtime.db, WAL): the
// deployments it owns, every instance it started (so a restarted daemon can re-adopt or clean
// up), cumulative metering per instance, and the event log.
//
// Rows are written before the thing they describe is created (an instance row exists before
// its container), so after a crash everything that might exist on the host is known; what is
// on the host but not here is an orphan and is removed by recovery.
//
// Thread-safety: all methods are serialized by an internal mutex.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "common/status.hpp"
#include "runtime/runtime.hpp"

namespace mercato::runtime::runc {

struct DeploymentRow {
  std::string id;
  std::string specJson;  // DeploymentSpec, secrets included (the file is 0600)
  std::string state;     // running | stopped
  std::string subnet;    // "10.89.3.0/24"
  std::string bridge;
  int64_t createdAtMs = 0;
  // First host uid/gid of the deployment's id range (host/userns.hpp); 0 = no user namespace.
  uint32_t idBase = 0;
};

struct InstanceRow {
  std::string id;  // "<deployment>.<service>.<ordinal>"
  std::string deployment, service;
  int ordinal = 0;
  int generation = 0;       // bumps on every (re)start: the container id carries it
  std::string containerId;  // runc id of the current generation
  std::string state;        // starting | running | backoff | exited | failed | stopped
  std::string ip;
  std::string hostVeth;
  std::string dir;  // instance dir (rootfs, bundle, logs, exit file)
  std::string imageDigest;
  int64_t startedAtMs = 0;
  int64_t finishedAtMs = 0;
  std::optional<int> exitCode;
  std::optional<int> signal;
  bool oomKilled = false;
  int restarts = 0;
  int consecutiveFailures = 0;
  int64_t nextStartMs = 0;  // backoff: steady-clock ms is not durable, so wall ms
  std::string message;
};

// Counters of the current generation as last sampled, plus everything earlier generations
// used (closed when a generation ends).
struct UsageRow {
  std::string instance;
  std::string deployment;
  Usage closed;   // finished generations
  Usage current;  // the running generation, as of lastSampleMs
  int64_t lastMemoryBytes = 0;
  int64_t lastSampleMs = 0;
};

class StateStore {
 public:
  static Result<std::unique_ptr<StateStore>> open(const std::string& path);

  Status putDeployment(const DeploymentRow& row);
  Result<DeploymentRow> deployment(const std::string& id);
  Result<std::vector<DeploymentRow>> deployments();
  Status deleteDeployment(const std::string& id);  // instances and usage rows stay for billing
  Result<std::vector<std::string>> usedSubnets();

  Status putInstance(const InstanceRow& row);
  Result<std::vector<InstanceRow>> instances(const std::string& deployment = "");
  Status deleteInstance(const std::string& id);

  Status putUsage(const UsageRow& row);
  Result<std::optional<UsageRow>> usage(const std::string& instance);
  Result<std::vector<UsageRow>> usageOfDeployment(const std::string& deployment);

  Result<uint64_t> appendEvent(RuntimeEvent& event);  // assigns seq
  Result<std::vector<RuntimeEvent>> events(uint64_t after, size_t limit);
  Result<uint64_t> lastEventSeq();

 private:
  explicit StateStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace mercato::runtime::runc
