// RuncRuntime: the single-machine cluster backend. Images come from the image store
// (runc/image/), containers are run by runc under a per-instance shim that survives this
// process, each instance gets its own network namespace on its deployment's CNI bridge, and
// usage is read from the instance's cgroup and veth (runc/host/).
//
// State lives in DATA_DIR/runtime.db (state_store.hpp). On create() the backend reconciles it
// with the host: running containers are re-adopted, containers that ended while the daemon was
// away are reaped (and restarted per policy), and anything of ours on the host that the state
// does not know (containers, network namespaces, cgroups, instance dirs) is removed.
//
// Threads: API calls run on the caller's thread, serialized per deployment. One supervisor
// thread reaps exited instances, probes readiness, restarts after backoff and samples usage
// when the Clock's sampling timer fires.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "runtime/runc/state_store.hpp"
#include "runtime/runtime.hpp"

namespace mercato::runtime::image {
class ImageStore;
struct Image;
}  // namespace mercato::runtime::image

namespace mercato::runtime::host {
class Runc;
}

namespace mercato::runtime::runc {

class RuncRuntime final : public Runtime {
 public:
  static Result<std::unique_ptr<RuncRuntime>> create(const RuntimeConfig& config);
  ~RuncRuntime() override;

  Capabilities capabilities() const override;
  Status deploy(const DeploymentSpec& spec) override;
  Status scale(const std::string& deployment, const std::string& service, int replicas) override;
  Status stop(const std::string& deployment) override;
  Status remove(const std::string& deployment) override;
  Result<DeploymentStatus> status(const std::string& deployment) override;
  Result<std::vector<DeploymentStatus>> list() override;
  Result<DeploymentStats> stats(const std::string& deployment) override;
  Status logs(const std::string& deployment, const LogOptions& options,
              const LogSink& sink) override;
  Result<ExecResult> exec(const ExecRequest& request) override;
  Result<std::unique_ptr<ExecSession>> startExec(const ExecSessionRequest& request,
                                                 ExecSessionCallbacks callbacks) override;
  Result<std::vector<RuntimeEvent>> events(uint64_t after, size_t limit, int64_t waitMs) override;

  // Image store, for callers that pre-pull or import bundled images.
  image::ImageStore& images() { return *images_; }
  // Samples every running instance now (also done by the Clock timer).
  void sampleNow();

  // Names of this data dir's containers, network namespaces and cgroups start with this
  // prefix + "-"; bridges are host::bridgeNameFor(prefix + "/" + deployment).
  static std::string namePrefixFor(const std::string& dataDir);

 private:
  struct Deployment;
  struct Instance;

  explicit RuncRuntime(const RuntimeConfig& config);
  Status init();
  Status recover();

  // Deployment-level (callers hold d.opMu).
  Status scaleLocked(Deployment& d, const std::string& service, int replicas);
  Status startInstance(Deployment& d, const ServiceSpec& svc, int ordinal);
  Status launch(Deployment& d, const ServiceSpec& svc, Instance& inst);
  // Stopping is two steps so that many instances get SIGTERM at once and share one grace period.
  void beginStop(Instance& inst);
  void finishStop(Instance& inst, bool forget, std::chrono::steady_clock::time_point deadline);
  void stopInstances(const std::vector<std::shared_ptr<Instance>>& insts, bool forget);
  void reap(Deployment& d, Instance& inst);
  void teardownGeneration(Instance& inst);
  void sample(Instance& inst, bool final);
  Status rollbackDeploy(const std::shared_ptr<Deployment>& d);
  // The deployment's user namespace file ("" without user namespaces), made if missing.
  // What a tenant may see of a host-side message: no command lines of our helpers (runc, ip,
  // CNI) and no path under the data dir (the operator's log keeps the full text).
  std::string forTenant(std::string message) const;
  Status forTenant(const Status& s) const;
  std::string usernsPathOf(const Deployment& d) const;
  Status ensureUserns(Deployment& d);
  // Drops the deployment's user namespace and its id-range claim once none of its files is left.
  void releaseIds(Deployment& d);

  void supervise();
  void superviseOnce();
  void scheduleSampling();

  std::shared_ptr<Deployment> findDeployment(const std::string& id);
  struct ExecTarget {
    std::string containerId;
    std::string instanceId;
    std::string bundleDir;  // holds the container's config.json
  };
  // The running instance an exec names (by instance id, else the first of the service, else
  // the first of the deployment). What: "exec" for error messages.
  Result<ExecTarget> execTarget(const std::string& deployment, const std::string& service,
                                const std::string& instance);
  std::vector<std::shared_ptr<Instance>> instancesOf(const std::string& deployment);
  Result<image::Image> resolveImage(const ServiceSpec& svc);
  // Saves the instance's row; a failure is logged (the in-memory state stays authoritative and
  // the next start's recovery reconciles a stale row with what runs on the host).
  void persist(const Instance& inst);
  void emit(const std::string& deployment, const std::string& service, const std::string& instance,
            const std::string& type, const std::string& message);
  Result<std::string> allocateSubnet();
  std::string containerIdFor(const std::string& instanceId, int generation) const;
  std::string logBase(const std::string& instanceId, const std::string& stream) const;
  InstanceStatus toStatus(const Instance& inst) const;

  RuntimeConfig config_;
  Clock& clock_;
  std::string prefix_;  // per data dir: names of our containers, netns and cgroups start with it
  std::string shimBinary_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<image::ImageStore> images_;
  std::unique_ptr<host::Runc> runc_;

  std::mutex mu_;  // guards the maps below; never held across runc/CNI calls
  std::map<std::string, std::shared_ptr<Deployment>> deployments_;
  std::map<std::string, std::shared_ptr<Instance>> instances_;  // by instance id
  std::set<std::string> deploying_;

  std::mutex eventsMu_;
  std::condition_variable eventsCv_;
  uint64_t lastEventSeq_ = 0;

  std::mutex superviseMu_;
  std::condition_variable superviseCv_;
  bool stopping_ = false;
  bool sampleDue_ = false;
  TimerId sampleTimer_ = 0;
  std::thread supervisor_;
};

}  // namespace mercato::runtime::runc
