// RuncRuntime, part 2: deployment and instance lifecycle, supervision and metering.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "runtime/runc/host/disk.hpp"
#include "runtime/runc/host/metering.hpp"
#include "runtime/runc/host/network.hpp"
#include "runtime/runc/host/oci_spec.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/host/shim.hpp"
#include "runtime/runc/host/userns.hpp"
#include "runtime/runc/runc_internal.hpp"
#include "runtime/spec_json.hpp"

namespace mercato::runtime::runc {

namespace fs = std::filesystem;

std::string netnsNameFor(const std::string& containerId) { return containerId; }
std::string cgroupPathFor(const std::string& containerId) { return "/mercato/" + containerId; }

namespace {

RestartPolicy policyOf(const ServiceSpec& s) {
  if (s.restart) return *s.restart;
  return s.kind == WorkloadKind::kJob ? RestartPolicy::kNever : RestartPolicy::kAlways;
}

const ServiceSpec* findService(const DeploymentSpec& spec, const std::string& name) {
  for (const auto& s : spec.services)
    if (s.name == name) return &s;
  return nullptr;
}

bool isLive(const std::string& state) { return state == "running" || state == "starting"; }

int hostCpuCount() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int64_t hostMemory() {
  long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<int64_t>(pages) * size : 0;
}

Status checkLimits(const DeploymentSpec& spec) {
  for (const auto& s : spec.services) {
    std::string where = "services." + s.name + ".resources";
    if (s.resources.cpuMillis > int64_t{hostCpuCount()} * 1000)
      return invalidArgument(where + ".cpu: " + std::to_string(s.resources.cpuMillis) +
                             "m is more than this host's " + std::to_string(hostCpuCount()) +
                             " cores");
    if (s.resources.memoryBytes != 0 && s.resources.memoryBytes < host::kMinMemoryBytes)
      return invalidArgument(where + ".memory: " + std::to_string(s.resources.memoryBytes) +
                             " bytes is below the 4Mi minimum");
    if (s.resources.storageBytes != 0 && s.resources.storageBytes < host::kMinDiskBytes)
      return invalidArgument(where + ".storage: " + std::to_string(s.resources.storageBytes) +
                             " bytes is below the 16Mi minimum");
    if (int64_t mem = hostMemory(); mem > 0 && s.resources.memoryBytes > mem)
      return invalidArgument(where + ".memory: " + std::to_string(s.resources.memoryBytes) +
                             " bytes is more than this host's " + std::to_string(mem));
  }
  return Status();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Deployments

Status RuncRuntime::deploy(const DeploymentSpec& spec) {
  RETURN_IF_ERROR(validateSpec(spec));
  RETURN_IF_ERROR(checkLimits(spec));
  {
    std::lock_guard lock(mu_);
    if (deployments_.count(spec.id) || deploying_.count(spec.id))
      return alreadyExists("deployment " + spec.id + " already exists");
    deploying_.insert(spec.id);
  }
  struct Unreserve {
    RuncRuntime* rt;
    std::string id;
    ~Unreserve() {
      std::lock_guard lock(rt->mu_);
      rt->deploying_.erase(id);
    }
  } unreserve{this, spec.id};

  auto d = std::make_shared<Deployment>();
  d->spec = spec;
  for (const auto& svc : spec.services) {
    auto img = resolveImage(svc);
    if (!img.isOk())
      return Status(img.status().code(),
                    "services." + svc.name + ".image: " + img.status().message());
    d->images[svc.name] = *img;
  }
  ASSIGN_OR_RETURN(d->row.subnet, allocateSubnet());
  d->row.id = spec.id;
  d->row.specJson = specToJson(spec).dump();
  d->row.state = "running";
  d->row.bridge = host::bridgeNameFor(prefix_ + "/" + spec.id);
  d->row.createdAtMs = clock_.nowMillis();
  if (config_.sandbox.userNamespaces) {
    ASSIGN_OR_RETURN(
        auto ids, host::claimIdRange(config_.sandbox.idRangeClaimsDir, config_.dataDir, spec.id));
    d->row.idBase = ids.hostBase;
  }
  if (Status s = store_->putDeployment(d->row); !s.isOk()) {
    releaseIds(*d);
    return s;
  }
  if (Status s = ensureUserns(*d); !s.isOk()) {
    Status undo = rollbackDeploy(d);
    if (!undo.isOk()) spdlog::error("runtime: rollback of {}: {}", spec.id, undo.message());
    return s;
  }
  {
    std::lock_guard lock(mu_);
    deployments_[spec.id] = d;
  }
  emit(spec.id, "", "", "deployed", std::to_string(spec.services.size()) + " services");
  std::lock_guard op(d->opMu);
  for (const auto& svc : spec.services) {
    for (int i = 0; i < svc.replicas; ++i) {
      Status s = startInstance(*d, svc, i);
      if (!s.isOk() && s.code() == Code::kInvalidArgument) {
        // The spec can't run at all (e.g. an unknown user): undo everything.
        Status undo = rollbackDeploy(d);
        if (!undo.isOk()) spdlog::error("runtime: rollback of {}: {}", spec.id, undo.message());
        return s;
      }
    }
  }
  return Status();
}

Status RuncRuntime::rollbackDeploy(const std::shared_ptr<Deployment>& d) {
  stopInstances(instancesOf(d->row.id), true);
  Status s = host::removeBridge(d->row.bridge, config_.dataDir + "/cni");
  warnIfError(store_->deleteDeployment(d->row.id), "runtime: forgetting deployment " + d->row.id);
  {
    std::lock_guard lock(mu_);
    deployments_.erase(d->row.id);
  }
  std::error_code ec;
  for (const auto& svc : d->spec.services)
    for (int i = 0; i < std::max(svc.replicas, 1); ++i)
      fs::remove_all(config_.dataDir + "/logs/" + svc.name, ec);
  releaseIds(*d);
  emit(d->row.id, "", "", "failed", "deployment rolled back");
  return s;
}

std::string RuncRuntime::usernsPathOf(const Deployment& d) const {
  return d.row.idBase ? config_.dataDir + "/userns/" + d.row.id : std::string();
}

Status RuncRuntime::ensureUserns(Deployment& d) {
  std::string path = usernsPathOf(d);
  if (path.empty() || host::isNamespaceFile(path)) return Status();
  std::error_code ec;
  fs::create_directories(config_.dataDir + "/userns", ec);
  return host::createUserns(path, host::IdRange{d.row.idBase, host::kIdRangeSize});
}

void RuncRuntime::releaseIds(Deployment& d) {
  if (!d.row.idBase) return;
  // The range stays claimed while any file it owns may exist: an instance dir that could not be
  // deleted keeps it (recovery releases it once the dir is gone).
  for (const auto& inst : instancesOf(d.row.id))
    if (!inst->row.dir.empty() && fs::exists(inst->row.dir)) {
      spdlog::warn("runtime: keeping the id range of {}: {} still exists", d.row.id, inst->row.dir);
      return;
    }
  warnIfError(host::removeUserns(usernsPathOf(d)), "runtime: user namespace of " + d.row.id);
  warnIfError(host::releaseIdRange(config_.sandbox.idRangeClaimsDir,
                                   host::IdRange{d.row.idBase, host::kIdRangeSize}),
              "runtime: id range of " + d.row.id);
}

Status RuncRuntime::scale(const std::string& deployment, const std::string& service, int replicas) {
  auto d = findDeployment(deployment);
  if (!d) return notFound("no deployment " + deployment);
  if (replicas < 0 || replicas > 1000)
    return invalidArgument("replicas: " + std::to_string(replicas) + " is outside 0..1000");
  std::lock_guard op(d->opMu);
  if (d->removed) return notFound("no deployment " + deployment);
  if (d->row.state != "running") {
    d->row.state = "running";
    RETURN_IF_ERROR(store_->putDeployment(d->row));
  }
  return scaleLocked(*d, service, replicas);
}

Status RuncRuntime::scaleLocked(Deployment& d, const std::string& service, int replicas) {
  ServiceSpec* svc = nullptr;
  for (auto& s : d.spec.services)
    if (s.name == service) svc = &s;
  if (!svc) return notFound("deployment " + d.row.id + " has no service " + service);
  int before = svc->replicas;
  svc->replicas = replicas;
  d.row.specJson = specToJson(d.spec).dump();
  RETURN_IF_ERROR(store_->putDeployment(d.row));

  std::map<int, std::shared_ptr<Instance>> byOrdinal;
  for (auto& inst : instancesOf(d.row.id))
    if (inst->row.service == service) byOrdinal[inst->row.ordinal] = inst;
  // Down: the highest ordinals go.
  std::vector<std::shared_ptr<Instance>> excess;
  for (auto it = byOrdinal.rbegin(); it != byOrdinal.rend() && it->first >= replicas; ++it)
    excess.push_back(it->second);
  stopInstances(excess, true);
  // Up: start what is missing or not live (a stopped service comes back).
  Status first;
  for (int i = 0; i < replicas; ++i) {
    auto it = byOrdinal.find(i);
    if (it != byOrdinal.end()) {
      const auto& st = it->second->row.state;
      if (isLive(st) || st == "backoff") continue;
      if (svc->kind == WorkloadKind::kJob && st == "exited") continue;
    }
    Status s = startInstance(d, *svc, i);
    if (!s.isOk() && first.isOk()) first = s;
  }
  emit(d.row.id, service, "", "scaled",
       std::to_string(before) + " -> " + std::to_string(replicas) + " replicas");
  return first;
}

Status RuncRuntime::stop(const std::string& deployment) {
  auto d = findDeployment(deployment);
  if (!d) return notFound("no deployment " + deployment);
  std::lock_guard op(d->opMu);
  d->row.state = "stopped";
  RETURN_IF_ERROR(store_->putDeployment(d->row));
  stopInstances(instancesOf(deployment), false);
  emit(deployment, "", "", "stopped", "");
  return Status();
}

Status RuncRuntime::remove(const std::string& deployment) {
  auto d = findDeployment(deployment);
  if (!d) return notFound("no deployment " + deployment);
  std::lock_guard op(d->opMu);
  d->row.state = "removing";
  RETURN_IF_ERROR(store_->putDeployment(d->row));
  stopInstances(instancesOf(deployment), true);
  Status s = host::removeBridge(d->row.bridge, config_.dataDir + "/cni");
  if (!s.isOk()) spdlog::warn("runtime: removing bridge of {}: {}", deployment, s.message());
  std::error_code ec;
  for (const auto& svc : d->spec.services)
    for (const auto& e : fs::directory_iterator(config_.dataDir + "/logs", ec))
      if (e.path().filename().string().rfind(deployment + "." + svc.name + ".", 0) == 0)
        fs::remove_all(e.path(), ec);
  releaseIds(*d);
  RETURN_IF_ERROR(store_->deleteDeployment(deployment));
  d->removed = true;
  {
    std::lock_guard lock(mu_);
    deployments_.erase(deployment);
  }
  emit(deployment, "", "", "removed", "");
  return Status();
}

// ---------------------------------------------------------------------------------------------
// Instances

Status RuncRuntime::startInstance(Deployment& d, const ServiceSpec& svc, int ordinal) {
  std::string id = d.row.id + "." + svc.name + "." + std::to_string(ordinal);
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard lock(mu_);
    auto it = instances_.find(id);
    if (it == instances_.end()) {
      inst = std::make_shared<Instance>();
      inst->row.id = id;
      inst->row.deployment = d.row.id;
      inst->row.service = svc.name;
      inst->row.ordinal = ordinal;
      inst->usage.instance = id;
      inst->usage.deployment = d.row.id;
      instances_[id] = inst;
    } else {
      inst = it->second;
    }
  }
  inst->row.consecutiveFailures = 0;
  inst->row.restarts = 0;
  Status s = launch(d, svc, *inst);
  if (!s.isOk() && s.code() != Code::kInvalidArgument && svc.kind == WorkloadKind::kService &&
      policyOf(svc) != RestartPolicy::kNever) {
    // Transient (runc, CNI, disk): retry with backoff like a crash.
    inst->row.consecutiveFailures = 1;
    inst->row.state = "backoff";
    inst->row.nextStartMs = clock_.nowMillis() + config_.restartBackoffMs;
    persist(*inst);
  }
  return s;
}

Status RuncRuntime::launch(Deployment& d, const ServiceSpec& svc, Instance& inst) {
  auto& row = inst.row;
  const image::Image& img = d.images.at(svc.name);
  row.generation += 1;
  row.containerId = containerIdFor(row.id, row.generation);
  row.dir = config_.dataDir + "/instances/" + row.containerId;
  row.imageDigest = img.digest;
  row.state = "starting";
  row.ip.clear();
  row.hostVeth.clear();
  row.exitCode.reset();
  row.signal.reset();
  row.oomKilled = false;
  row.startedAtMs = clock_.nowMillis();
  row.finishedAtMs = 0;
  row.message.clear();
  inst.ready = false;
  inst.ports = svc.ports;
  if (inst.ports.empty())
    for (auto p : img.config.exposedPorts) inst.ports.push_back({p, "tcp", ""});
  inst.usage.current = Usage{};
  inst.usage.lastMemoryBytes = 0;
  inst.usage.lastSampleMs = row.startedAtMs;
  // The row exists before anything on the host does, so recovery can always clean up.
  RETURN_IF_ERROR(store_->putInstance(inst.row));

  auto fail = [&](const Status& s) -> Status {
    teardownGeneration(inst);
    spdlog::warn("runtime: {} failed to start: {}", row.id, s.message());
    Status shown = forTenant(s);  // status, events and callers reach the tenant
    row.state = "failed";
    row.finishedAtMs = clock_.nowMillis();
    row.message = shown.message();
    persist(inst);
    emit(row.deployment, row.service, row.id, "failed", shown.message());
    return shown;
  };

  // The instance's layers: its own size-limited disk for everything it writes, and the image
  // id-mapped into its deployment's uid range (docs/runc-host.md, "User namespaces", "Disks").
  const std::string userns = usernsPathOf(d);
  if (Status s = ensureUserns(d); !s.isOk()) return fail(s);
  std::error_code ec;
  fs::create_directories(row.dir, ec);
  if (ec) return fail(internalError("cannot create " + row.dir + ": " + ec.message()));
  image::RootfsOptions layers;
  layers.rootUid = layers.rootGid = d.row.idBase;
  std::string etcDir = row.dir + "/etc";
  if (config_.sandbox.diskQuotas) {
    host::DiskRequest disk;
    disk.imageFile = row.dir + "/disk.img";
    disk.mountPoint = row.dir + "/disk";
    disk.bytes = svc.resources.storageBytes > 0 ? svc.resources.storageBytes
                                                : config_.sandbox.defaultStorageBytes;
    disk.templateDir = config_.dataDir + "/disk-templates";
    disk.rootUid = disk.rootGid = d.row.idBase;
    fs::create_directories(disk.mountPoint, ec);
    if (Status s = host::createDisk(disk); !s.isOk())
      return fail(Status(s.code(), "services." + svc.name + ".resources.storage: " + s.message()));
    layers.layerDir = disk.mountPoint;
    etcDir = disk.mountPoint + "/etc";
  }
  if (!userns.empty()) {
    layers.lowerDir = row.dir + "/lower";
    fs::create_directories(layers.lowerDir, ec);
    if (Status s = host::idmapBind(img.rootfsPath, layers.lowerDir, userns); !s.isOk())
      return fail(s);
  }
  auto rootfs = images_->prepareRootfs(img, row.dir, layers);
  if (!rootfs.isOk()) return fail(rootfs.status());

  std::string netns = netnsNameFor(row.containerId);
  if (Status s = host::createNetns(netns, userns); !s.isOk()) return fail(s);
  const std::string nsPath = host::netnsPath(netns);
  host::NetworkAttachRequest net;
  net.containerId = row.containerId;
  net.netnsName = netns;
  net.bridge = d.row.bridge;
  net.subnet = d.row.subnet;
  net.ipamDataDir = config_.dataDir + "/cni";
  net.cniPluginDir = config_.cniPluginDir;
  net.egressAllow = config_.sandbox.egressAllow;  // the provider's, never the tenant's
  net.nameservers = config_.sandbox.nameservers;
  // The CNI plugins (~10-20 ms, more for a deployment's first instance, which creates its
  // bridge) run while runc creates the container: the container joins the namespace by path
  // and its interface comes up moments after it starts, like a cable plugged in late.
  auto attaching = std::async(std::launch::async, [net] { return host::attach(net); });
  std::optional<Result<host::NetworkAttachment>> attached;
  auto joinNetwork = [&]() -> Status {
    if (!attached) attached.emplace(attaching.get());
    if (!attached->isOk()) return attached->status();
    row.ip = (*attached)->containerIp;
    row.hostVeth = (*attached)->hostVeth;
    return Status();
  };
  auto failAfterNetwork = [&](const Status& s) {
    (void)joinNetwork();
    return fail(s);
  };

  // Process: the image's config, overridden by the spec.
  host::ContainerConfig cc;
  cc.id = row.containerId;
  cc.rootfs = *rootfs;
  cc.readonlyRootfs = svc.readOnlyRootfs;
  std::vector<std::string> entry = svc.command.empty() ? img.config.entrypoint : svc.command;
  std::vector<std::string> args =
      !svc.args.empty() ? svc.args
                        : (svc.command.empty() ? img.config.cmd : std::vector<std::string>{});
  cc.args = entry;
  cc.args.insert(cc.args.end(), args.begin(), args.end());
  if (cc.args.empty())
    return failAfterNetwork(invalidArgument("services." + svc.name +
                                            ": no command (the image has no Entrypoint "
                                            "or Cmd, and the spec sets none)"));
  cc.env = img.config.env;
  for (const auto& e : svc.env) {
    std::string prefix = e.name + "=";
    std::erase_if(cc.env, [&](const std::string& x) { return x.rfind(prefix, 0) == 0; });
    cc.env.push_back(prefix + e.value);
  }
  cc.cwd = !svc.workingDir.empty()         ? svc.workingDir
           : img.config.workingDir.empty() ? "/"
                                           : img.config.workingDir;
  cc.user = !svc.user.empty() ? svc.user : img.config.user;
  cc.hostname = row.id;
  std::replace(cc.hostname.begin(), cc.hostname.end(), '.', '-');
  cc.netnsPath = nsPath;
  cc.cgroupsPath = cgroupPathFor(row.containerId);
  cc.etcDir = etcDir;
  if (!userns.empty()) {
    cc.usernsPath = userns;
    cc.ids = host::IdRange{d.row.idBase, host::kIdRangeSize};
  }
  cc.cpuMillicores = svc.resources.cpuMillis;
  cc.memoryBytes = svc.resources.memoryBytes;
  cc.pidsLimit = svc.resources.pids > 0 ? svc.resources.pids : 1024;
  cc.seccompAllow = config_.sandbox.seccompAllow;  // the provider's, never the manifest's
  host::EtcFiles etc;
  etc.hostname = cc.hostname;
  etc.nameservers = config_.sandbox.nameservers;  // empty: the host's, as the firewall allows
  if (Status s = host::writeEtcFiles(cc.etcDir, etc); !s.isOk()) return failAfterNetwork(s);
  auto spec = host::makeOciSpec(cc);
  if (!spec.isOk())
    return failAfterNetwork(
        Status(spec.status().code(), "services." + svc.name + ": " + spec.status().message()));
  if (Status s = host::writeBundleConfig(row.dir, *spec); !s.isOk()) return failAfterNetwork(s);

  host::ShimOptions so;
  so.shimBinary = shimBinary_;
  so.runcBinary = runc_->binary();
  so.runcRoot = runc_->root();
  so.id = row.containerId;
  so.bundleDir = row.dir;
  so.stdoutLog = logBase(row.id, "stdout");
  so.stderrLog = logBase(row.id, "stderr");
  so.exitFile = row.dir + "/exit.json";
  so.maxLogBytes = config_.logMaxBytes;
  so.maxLogFiles = config_.logMaxFiles;
  fs::create_directories(fs::path(so.stdoutLog).parent_path(), ec);
  auto started = host::startContainer(so);
  if (!started.isOk()) return failAfterNetwork(started.status());
  if (Status s = joinNetwork(); !s.isOk()) return fail(s);

  row.state = "running";
  persist(inst);
  emit(row.deployment, row.service, row.id, "started",
       row.containerId + " ip " + row.ip + " image " + img.digest.substr(0, 19));
  if (inst.ports.empty()) inst.ready = true;
  superviseCv_.notify_all();  // probe readiness promptly
  return Status();
}

void RuncRuntime::teardownGeneration(Instance& inst) {
  auto& row = inst.row;
  if (row.containerId.empty()) return;
  Status s = runc_->kill(row.containerId, SIGKILL, true);
  (void)s;
  if (Status r = runc_->remove(row.containerId, true); !r.isOk())
    spdlog::warn("runtime: runc delete {}: {}", row.containerId, r.message());
  host::NetworkAttachRequest net;
  net.containerId = row.containerId;
  net.netnsName = netnsNameFor(row.containerId);
  auto d = findDeployment(row.deployment);
  if (d) {
    net.bridge = d->row.bridge;
    net.subnet = d->row.subnet;
  }
  net.ipamDataDir = config_.dataDir + "/cni";
  net.cniPluginDir = config_.cniPluginDir;
  if (Status r = host::detach(net); !r.isOk())
    spdlog::warn("runtime: detach {}: {}", row.containerId, r.message());
  if (Status r = host::deleteNetns(net.netnsName); !r.isOk())
    spdlog::warn("runtime: netns {}: {}", net.netnsName, r.message());
  if (Status r = host::removeCgroup(cgroupPathFor(row.containerId)); !r.isOk())
    spdlog::warn("runtime: cgroup {}: {}", row.containerId, r.message());
  if (!row.dir.empty()) {
    // releaseRootfs unmounts the rootfs, the id-mapped lower and the disk, then deletes the
    // dir; it keeps the dir rather than delete through a mount that would not go.
    if (Status r = images_->releaseRootfs(row.dir); !r.isOk())
      spdlog::warn("runtime: rootfs {}: {}", row.dir, r.message());
  }
  inst.ready = false;
}

void RuncRuntime::beginStop(Instance& inst) {
  // A failed SIGTERM is not fatal: the stop deadline SIGKILLs the whole container.
  if (isLive(inst.row.state))
    warnIfError(runc_->kill(inst.row.containerId, SIGTERM, false),
                "runtime: SIGTERM to " + inst.row.containerId);
}

// Waits for the exit file until `deadline`, then SIGKILLs; records and tears down.
void RuncRuntime::finishStop(Instance& inst, bool forget,
                             std::chrono::steady_clock::time_point deadline) {
  auto& row = inst.row;
  if (isLive(row.state)) {
    std::string exitFile = row.dir + "/exit.json";
    auto waitExit = [&](std::chrono::steady_clock::time_point until) {
      while (!fs::exists(exitFile) && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return fs::exists(exitFile);
    };
    if (!waitExit(deadline)) {
      warnIfError(runc_->kill(row.containerId, SIGKILL, true),
                  "runtime: SIGKILL to " + row.containerId);
      waitExit(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    }
    sample(inst, true);
    if (auto ex = host::readExitFile(exitFile); ex.isOk()) {
      row.exitCode = ex->exitCode;
      row.signal = ex->signal ? std::optional<int>(ex->signal) : std::nullopt;
      row.finishedAtMs = ex->finishedAtMs;
    } else {
      row.finishedAtMs = clock_.nowMillis();
    }
    teardownGeneration(inst);
    emit(row.deployment, row.service, row.id, "stopped", "");
  }
  row.state = "stopped";
  persist(inst);
  if (forget) {
    warnIfError(store_->deleteInstance(row.id), "runtime: forgetting instance " + row.id);
    std::lock_guard lock(mu_);
    instances_.erase(row.id);
  }
}

void RuncRuntime::stopInstances(const std::vector<std::shared_ptr<Instance>>& insts, bool forget) {
  for (const auto& i : insts) beginStop(*i);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.stopGraceMs);
  for (const auto& i : insts) finishStop(*i, forget, deadline);
}

// Records an ended generation, tears it down, and schedules a restart per policy.
void RuncRuntime::reap(Deployment& d, Instance& inst) {
  auto& row = inst.row;
  sample(inst, true);
  auto ex = host::readExitFile(row.dir + "/exit.json");
  if (ex.isOk()) {
    row.exitCode = ex->exitCode;
    row.signal = ex->signal ? std::optional<int>(ex->signal) : std::nullopt;
    row.oomKilled = ex->oomKilled;
    if (ex->startedAtMs) row.startedAtMs = ex->startedAtMs;
    row.finishedAtMs = ex->finishedAtMs ? ex->finishedAtMs : clock_.nowMillis();
  } else {
    row.finishedAtMs = clock_.nowMillis();
    if (row.message.empty()) row.message = "exit status unknown: " + ex.status().message();
  }
  // The cgroup knows about OOM kills even when the exit file can't tell.
  if (auto cg = host::readCgroupStats(cgroupPathFor(row.containerId));
      cg.isOk() && cg->oomKills > 0)
    row.oomKilled = true;
  teardownGeneration(inst);
  bool failed = !row.exitCode || *row.exitCode != 0;
  row.state = failed ? "failed" : "exited";
  std::string how = row.exitCode ? "exit code " + std::to_string(*row.exitCode)
                                 : (row.signal ? "signal " + std::to_string(*row.signal)
                                               : std::string("unknown"));
  if (row.signal && row.exitCode) how += " (signal " + std::to_string(*row.signal) + ")";
  emit(row.deployment, row.service, row.id, "exited",
       how + ", ran " + std::to_string(row.finishedAtMs - row.startedAtMs) + " ms");
  if (row.oomKilled) {
    row.message = "killed: memory limit exceeded";
    emit(row.deployment, row.service, row.id, "oom", "memory limit exceeded");
  }
  const ServiceSpec* svc = findService(d.spec, row.service);
  bool wanted = svc && d.row.state == "running" && row.ordinal < svc->replicas;
  RestartPolicy policy = svc ? policyOf(*svc) : RestartPolicy::kNever;
  bool restart = wanted && (policy == RestartPolicy::kAlways ||
                            (policy == RestartPolicy::kOnFailure && failed));
  if (restart) {
    int64_t ran = row.finishedAtMs - row.startedAtMs;
    if (ran >= config_.restartBackoffMaxMs) row.consecutiveFailures = 0;
    row.consecutiveFailures += 1;
    int64_t backoff = config_.restartBackoffMs;
    for (int i = 1; i < row.consecutiveFailures && backoff < config_.restartBackoffMaxMs; ++i)
      backoff *= 2;
    backoff = std::min(backoff, config_.restartBackoffMaxMs);
    row.state = "backoff";
    row.nextStartMs = clock_.nowMillis() + backoff;
    row.message = "restarting in " + std::to_string(backoff) + " ms after " + how;
    emit(row.deployment, row.service, row.id, "restarting", row.message);
  }
  persist(inst);
}

// ---------------------------------------------------------------------------------------------
// Metering

void RuncRuntime::sample(Instance& inst, bool final) {
  auto& row = inst.row;
  auto& u = inst.usage;
  if (row.containerId.empty() || !isLive(row.state)) return;
  auto cg = host::readCgroupStats(cgroupPathFor(row.containerId));
  int64_t now = clock_.nowMillis();
  if (cg.isOk()) {
    u.current.cpuSeconds = static_cast<double>(cg->cpuNanos) / 1e9;
    u.current.memoryPeakBytes =
        std::max(u.current.memoryPeakBytes, static_cast<int64_t>(cg->memoryPeakBytes));
    int64_t dt = std::max<int64_t>(0, now - u.lastSampleMs);
    double avg =
        (static_cast<double>(u.lastMemoryBytes) + static_cast<double>(cg->memoryBytes)) / 2;
    u.current.memoryGiBSeconds += avg * (static_cast<double>(dt) / 1000.0) / double(1ull << 30);
    u.lastMemoryBytes = final ? 0 : static_cast<int64_t>(cg->memoryBytes);
    u.current.pids = final ? 0 : static_cast<int64_t>(cg->pids);
  }
  if (config_.sandbox.diskQuotas) {
    if (auto disk = host::diskUsage(row.dir + "/disk"); disk.isOk()) {
      int64_t dt = std::max<int64_t>(0, now - u.lastSampleMs);
      double avg =
          (static_cast<double>(u.current.storageBytes) + static_cast<double>(disk->usedBytes)) / 2;
      u.current.storageGiBSeconds += avg * (static_cast<double>(dt) / 1000.0) / double(1ull << 30);
      u.current.storageBytes = final ? 0 : disk->usedBytes;
    }
  }
  if (!row.hostVeth.empty()) {
    if (auto net = host::readInterfaceCounters(row.hostVeth); net.isOk()) {
      // Host side of the veth: what it receives is what the instance sent.
      u.current.netTxBytes = static_cast<int64_t>(net->rxBytes);
      u.current.netRxBytes = static_cast<int64_t>(net->txBytes);
    }
  }
  u.lastSampleMs = now;
  if (final) {
    u.closed += u.current;
    u.closed.pids = 0;
    u.current = Usage{};
    u.lastMemoryBytes = 0;
  }
  if (Status s = store_->putUsage(u); !s.isOk()) spdlog::error("runtime: {}", s.message());
}

void RuncRuntime::sampleNow() {
  for (auto& inst : instancesOf("")) {
    auto d = findDeployment(inst->row.deployment);
    if (!d) continue;
    std::lock_guard op(d->opMu);
    sample(*inst, false);
  }
}

void RuncRuntime::scheduleSampling() {
  sampleTimer_ = clock_.callAfter(Millis(config_.sampleIntervalMs), [this] {
    {
      std::lock_guard lock(superviseMu_);
      if (stopping_) return;
      sampleDue_ = true;
    }
    superviseCv_.notify_all();
    scheduleSampling();
  });
}

// ---------------------------------------------------------------------------------------------
// Supervision

void RuncRuntime::supervise() {
  while (true) {
    bool doSample = false;
    {
      std::unique_lock lock(superviseMu_);
      bool anyStarting = false;
      {
        std::lock_guard m(mu_);
        for (auto& [id, inst] : instances_)
          if (isLive(inst->row.state) && !inst->ready) anyStarting = true;
      }
      auto wait = std::chrono::milliseconds(anyStarting ? 5 : config_.superviseIntervalMs);
      superviseCv_.wait_for(lock, wait, [&] { return stopping_ || sampleDue_; });
      if (stopping_) return;
      doSample = sampleDue_;
      sampleDue_ = false;
    }
    superviseOnce();
    if (doSample) sampleNow();
  }
}

void RuncRuntime::superviseOnce() {
  int64_t now = clock_.nowMillis();
  for (auto& inst : instancesOf("")) {
    auto d = findDeployment(inst->row.deployment);
    if (!d) continue;
    auto& row = inst->row;
    if (isLive(row.state)) {
      if (fs::exists(row.dir + "/exit.json")) {
        std::lock_guard op(d->opMu);
        if (isLive(row.state)) reap(*d, *inst);
        continue;
      }
      if (!inst->ready && row.state == "running" && !row.ip.empty()) {
        bool all = true;
        for (const auto& p : inst->ports)
          if (p.protocol == "tcp" && !portAnswers(row.ip, p.port, 20)) all = false;
        if (all) {
          inst->ready = true;
          emit(row.deployment, row.service, row.id, "ready", row.ip);
        }
      }
    } else if (row.state == "backoff" && row.nextStartMs <= now) {
      std::lock_guard op(d->opMu);
      if (row.state != "backoff" || d->removed) continue;
      const ServiceSpec* svc = findService(d->spec, row.service);
      if (!svc || row.ordinal >= svc->replicas || d->row.state != "running") continue;
      row.restarts += 1;
      Status s = launch(*d, *svc, *inst);
      if (!s.isOk()) {
        // launch() marked it failed; keep trying with backoff like any other failure.
        row.consecutiveFailures += 1;
        int64_t backoff =
            std::min(config_.restartBackoffMaxMs,
                     config_.restartBackoffMs << std::min(row.consecutiveFailures, 16));
        row.state = "backoff";
        row.nextStartMs = clock_.nowMillis() + backoff;
        persist(*inst);
      }
    }
  }
}

}  // namespace mercato::runtime::runc
