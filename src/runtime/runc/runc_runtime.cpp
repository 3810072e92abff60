#include "runtime/runc/runc_runtime.hpp"
#include "runtime/runc/runc_internal.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <unistd.h>
#include <regex>

#include <csignal>
#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "crypto/hash.hpp"
#include "runtime/runc/host/log_files.hpp"
#include "runtime/runc/host/metering.hpp"
#include "runtime/runc/host/network.hpp"
#include "runtime/runc/host/oci_spec.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/host/seccomp.hpp"
#include "runtime/runc/host/shim.hpp"
#include "runtime/runc/host/userns.hpp"
#include "runtime/runc/image/image_store.hpp"
#include "runtime/spec_json.hpp"

namespace mercato::runtime::runc {

namespace fs = std::filesystem;

namespace {

std::string shortHash(const std::string& s, size_t hexChars) {
  auto h = crypto::blake2b256(std::string_view(s));
  return toHex(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()))
      .substr(0, hexChars);
}

}  // namespace

bool portAnswers(const std::string& ip, uint16_t port, int timeoutMs) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return false;
  }
  bool ok = false;
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeoutMs) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      ok = err == 0;
    }
  }
  ::close(fd);
  return ok;
}

namespace {

InstanceState stateFromName(const std::string& s) {
  if (s == "running") return InstanceState::kRunning;
  if (s == "backoff") return InstanceState::kBackoff;
  if (s == "exited") return InstanceState::kExited;
  if (s == "failed") return InstanceState::kFailed;
  if (s == "stopped") return InstanceState::kStopped;
  return InstanceState::kStarting;
}

const ServiceSpec* serviceOf(const DeploymentSpec& spec, const std::string& name) {
  for (const auto& s : spec.services)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction and recovery

RuncRuntime::RuncRuntime(const RuntimeConfig& config) : config_(config), clock_(*config.clock) {}

Result<std::unique_ptr<RuncRuntime>> RuncRuntime::create(const RuntimeConfig& config) {
  if (!config.clock) return invalidArgument("runc runtime: a clock is required");
  if (config.dataDir.empty()) return invalidArgument("runc runtime: dataDir is required");
  if (::geteuid() != 0)
    return failedPrecondition("runc runtime: needs root (runc, network namespaces, cgroups)");
  std::unique_ptr<RuncRuntime> rt(new RuncRuntime(config));
  RETURN_IF_ERROR(rt->init());
  return rt;
}

std::string RuncRuntime::namePrefixFor(const std::string& dataDir) {
  return "mc" + shortHash(fs::absolute(dataDir).lexically_normal().string(), 6);
}

Status RuncRuntime::init() {
  std::error_code ec;
  fs::path root = fs::absolute(config_.dataDir).lexically_normal();
  config_.dataDir = root.string();
  for (const char* sub : {"images", "instances", "logs", "cni", "runc"}) {
    fs::create_directories(root / sub, ec);
    if (ec) return internalError("creating " + (root / sub).string() + ": " + ec.message());
  }
  // A provider's relaxation of the seccomp profile must name groups that exist.
  if (auto profile = host::seccompProfile(config_.sandbox.seccompAllow); !profile.isOk())
    return Status(profile.status().code(), "sandbox.seccomp.allow: " + profile.status().message());
  RETURN_IF_ERROR(
      host::checkNetworkPolicy(config_.sandbox.egressAllow, config_.sandbox.nameservers));
  if (config_.sandbox.userNamespaces) {
    // runc mounts the rootfs as the container's root, an unprivileged host uid: it must be able
    // to pass through the dirs above the instance dirs (search only: it can't list or read them).
    for (const fs::path& dir : {root, root / "instances"}) {
      fs::permissions(dir, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                      fs::perm_options::add, ec);
      if (ec) return internalError("cannot open " + dir.string() + " for search: " + ec.message());
    }
    // The dirs above the data dir are the operator's: say which one to open, don't change it.
    for (fs::path dir = root.parent_path(); !dir.empty(); dir = dir.parent_path()) {
      struct stat st {};
      if (::stat(dir.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH))
        return failedPrecondition(
            "runc runtime: with user namespaces, container root is an unprivileged host uid that "
            "must be able to pass through every directory above the data dir, but " +
            dir.string() + " is not searchable by others (mode " +
            std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
            std::to_string(st.st_mode & 7) + "): run `chmod o+x " + dir.string() +
            "`, or choose a data dir such as /var/lib/mercato");
      if (dir == dir.root_path()) break;
    }
  }
  prefix_ = namePrefixFor(config_.dataDir);
  if (config_.runcBinary.find('/') == std::string::npos) {
    // The shim execs runc by path: resolve it once, here, with a clear error.
    std::string found;
    const char* path = std::getenv("PATH");
    for (const auto& dir : split(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin", ':')) {
      fs::path candidate = fs::path(dir) / config_.runcBinary;
      if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) {
        found = candidate.string();
        break;
      }
    }
    if (found.empty() && ::access(host::kDefaultRuncBinary, X_OK) == 0)
      found = host::kDefaultRuncBinary;
    if (found.empty())
      return failedPrecondition("runc runtime: '" + config_.runcBinary +
                                "' not found in PATH (install Debian's runc)");
    config_.runcBinary = found;
  }
  if (!config_.shimBinary.empty()) {
    shimBinary_ = config_.shimBinary;
  } else {
    shimBinary_ = (fs::read_symlink("/proc/self/exe", ec).parent_path() / "mercato-shim").string();
  }
  if (!fs::exists(shimBinary_))
    return failedPrecondition("runc runtime: shim not found at " + shimBinary_);

  ASSIGN_OR_RETURN(store_, StateStore::open((root / "runtime.db").string()));
  image::ImageStoreConfig ic;
  ic.root = (root / "images").string();
  ic.maxCacheBytes = config_.imageCacheBytes;
  ic.maxImageBytes = config_.imageMaxBytes;
  ic.insecureRegistries = config_.insecureRegistries;
  ASSIGN_OR_RETURN(images_, image::ImageStore::create(ic));
  runc_ = std::make_unique<host::Runc>(config_.runcBinary, (root / "runc").string());
  ASSIGN_OR_RETURN(lastEventSeq_, store_->lastEventSeq());
  RETURN_IF_ERROR(recover());
  supervisor_ = std::thread([this] { supervise(); });
  scheduleSampling();
  return Status();
}

RuncRuntime::~RuncRuntime() {
  {
    std::lock_guard lock(superviseMu_);
    stopping_ = true;
  }
  superviseCv_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
  if (sampleTimer_) clock_.cancel(sampleTimer_);
  // Containers keep running under their shims: a restarted daemon re-adopts them.
}

Status RuncRuntime::recover() {
  ASSIGN_OR_RETURN(auto depRows, store_->deployments());
  ASSIGN_OR_RETURN(auto instRows, store_->instances());
  ASSIGN_OR_RETURN(auto containers, runc_->list());
  std::map<std::string, host::RuncContainerState> byId;
  for (auto& c : containers) byId[c.id] = c;

  std::set<std::string> knownContainers, knownDirs;
  for (auto& row : depRows) {
    auto d = std::make_shared<Deployment>();
    d->row = row;
    auto spec = specFromJson(nlohmann::json::parse(row.specJson, nullptr, false));
    if (!spec.isOk()) {
      spdlog::error("runtime: deployment {} has an unreadable spec: {}", row.id,
                    spec.status().message());
      continue;
    }
    d->spec = std::move(*spec);
    for (auto& svc : d->spec.services) {
      // Specs stored before imageLayout existed named bundled images "oci-layout:<path>". This
      // is the runtime's own database, written by the provider, so the path is trusted here.
      static constexpr std::string_view kLegacyLayout = "oci-layout:";
      if (svc.imageLayout.empty() && svc.image.rfind(kLegacyLayout, 0) == 0) {
        svc.imageLayout = svc.image.substr(kLegacyLayout.size());
        svc.image = "bundle:" + svc.name;
      }
      auto img = resolveImage(svc);
      if (img.isOk()) d->images[svc.name] = *img;
    }
    // After a reboot the user namespace file is gone (its mount was): make it again.
    warnIfError(ensureUserns(*d), "runtime: user namespace of " + row.id);
    deployments_[row.id] = d;
  }
  for (auto& row : instRows) {
    auto inst = std::make_shared<Instance>();
    inst->row = row;
    auto u = store_->usage(row.id);
    if (u.isOk() && *u)
      inst->usage = **u;
    else {
      inst->usage.instance = row.id;
      inst->usage.deployment = row.deployment;
    }
    auto d = deployments_.find(row.deployment);
    if (d != deployments_.end()) {
      if (const auto* svc = serviceOf(d->second->spec, row.service)) {
        inst->ports = svc->ports;
        auto img = d->second->images.find(svc->name);
        if (inst->ports.empty() && img != d->second->images.end())
          for (auto p : img->second.config.exposedPorts) inst->ports.push_back({p, "tcp", ""});
      }
    }
    instances_[row.id] = inst;
    if (row.state == "running" || row.state == "starting") {
      knownContainers.insert(row.containerId);
      knownDirs.insert(row.containerId);
    }
  }
  // Instances that were live: re-adopt, or reap what ended while we were away.
  for (auto& [id, inst] : instances_) {
    auto& row = inst->row;
    if (row.state != "running" && row.state != "starting") continue;
    auto d = deployments_.find(row.deployment);
    auto c = byId.find(row.containerId);
    bool alive = c != byId.end() && (c->second.status == "running" || c->second.status == "paused");
    bool exited = fs::exists(fs::path(row.dir) / "exit.json");
    if (d == deployments_.end()) {
      // Its deployment was being removed when we died: finish that.
      teardownGeneration(*inst);
      row.state = "stopped";
      persist(*inst);
      continue;
    }
    if (alive && !exited && row.state == "running") {
      // Re-pin (and remount if needed) its rootfs in the image store.
      auto img = d->second->images.find(row.service);
      if (img != d->second->images.end()) {
        auto rootfs = images_->prepareRootfs(img->second, row.dir);
        if (!rootfs.isOk())
          spdlog::warn("runtime: re-adopting rootfs of {}: {}", row.id, rootfs.status().message());
      }
      emit(row.deployment, row.service, row.id, "adopted",
           "container " + row.containerId + " re-adopted after restart");
      continue;
    }
    // Ended, or died mid-start: the supervisor reaps it (and restarts it per policy).
    if (!exited && !alive) {
      row.message = "lost while the daemon was down";
    }
    reap(*d->second, *inst);
  }
  // Orphans: anything of ours on the host that the state does not describe.
  for (auto& c : containers) {
    if (c.id.rfind(prefix_ + "-", 0) != 0 || knownContainers.count(c.id)) continue;
    (void)runc_->kill(c.id, SIGKILL, true);  // fails when it already stopped: remove -f follows
    if (!warnIfError(runc_->remove(c.id, true), "runtime: removing orphan container " + c.id))
      continue;
    emit("", "", "", "orphan-removed", "container " + c.id);
  }
  if (auto ns = host::listNetns(); ns.isOk()) {
    for (const auto& name : *ns) {
      if (name.rfind(prefix_ + "-", 0) != 0 || knownContainers.count(name)) continue;
      if (!warnIfError(host::deleteNetns(name), "runtime: removing orphan netns " + name)) continue;
      emit("", "", "", "orphan-removed", "network namespace " + name);
    }
  }
  if (auto cgs = host::listCgroups("/mercato"); cgs.isOk()) {
    for (const auto& path : *cgs) {
      std::string name = fs::path(path).filename().string();
      if (name.rfind(prefix_ + "-", 0) != 0 || knownContainers.count(name)) continue;
      if (!warnIfError(host::removeCgroup(path), "runtime: removing orphan cgroup " + path))
        continue;
      emit("", "", "", "orphan-removed", "cgroup " + path);
    }
  }
  // Bridges (with their NAT and filter rules) of deployments the state no longer has: a crash
  // during remove(), or a removal whose bridge deletion failed. Ours are those with an IPAM dir.
  std::set<std::string> knownBridges;
  for (const auto& row : depRows) knownBridges.insert(row.bridge);  // readable spec or not
  for (const auto& bridge : host::listBridges(config_.dataDir + "/cni")) {
    if (knownBridges.count(bridge)) continue;
    if (!warnIfError(host::removeBridge(bridge, config_.dataDir + "/cni"),
                     "runtime: removing orphan bridge " + bridge))
      continue;
    emit("", "", "", "orphan-removed", "bridge " + bridge);
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(config_.dataDir) / "instances", ec)) {
    std::string name = e.path().filename().string();
    if (knownDirs.count(name)) continue;
    // releaseRootfs deletes the dir, and keeps it rather than delete through a mount.
    if (!warnIfError(images_->releaseRootfs(e.path().string()),
                     "runtime: releasing the rootfs of orphan instance dir " + name))
      continue;
    emit("", "", "", "orphan-removed", "instance dir " + name);
  }
  // User namespaces and id ranges of deployments this data dir no longer has.
  for (const auto& e : fs::directory_iterator(fs::path(config_.dataDir) / "userns", ec)) {
    std::string name = e.path().filename().string();
    if (deployments_.count(name)) continue;
    if (warnIfError(host::removeUserns(e.path().string()), "runtime: orphan user namespace"))
      emit("", "", "", "orphan-removed", "user namespace " + name);
  }
  if (auto claims = host::listIdRangeClaims(config_.sandbox.idRangeClaimsDir); claims.isOk()) {
    for (const auto& c : *claims) {
      if (c.ownerDir != config_.dataDir || deployments_.count(c.owner)) continue;
      if (warnIfError(host::releaseIdRange(config_.sandbox.idRangeClaimsDir, c.range),
                      "runtime: orphan id range"))
        emit("", "", "", "orphan-removed", "id range " + std::to_string(c.range.hostBase));
    }
  }
  return Status();
}

// ---------------------------------------------------------------------------------------------
// Helpers

std::string RuncRuntime::forTenant(std::string message) const {
  static const std::regex commandLine("`[^`]*`");
  static const std::regex execPidFile("/tmp/mercato-exec-[0-9-]+\\.pid[A-Za-z.]*");
  message = std::regex_replace(message, commandLine, "(a host command)");
  message = std::regex_replace(message, execPidFile, "(a host file)");
  for (size_t at; (at = message.find(config_.dataDir)) != std::string::npos;) {
    size_t end = at + config_.dataDir.size();
    while (end < message.size() && message[end] != ' ' && message[end] != ':' &&
           message[end] != '"' && message[end] != ',' && message[end] != '\'')
      ++end;
    message.replace(at, end - at, "(a host path)");
  }
  return message;
}

Status RuncRuntime::forTenant(const Status& s) const {
  return s.isOk() ? s : Status(s.code(), forTenant(s.message()));
}

std::shared_ptr<RuncRuntime::Deployment> RuncRuntime::findDeployment(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = deployments_.find(id);
  return it == deployments_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<RuncRuntime::Instance>> RuncRuntime::instancesOf(
    const std::string& deployment) {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Instance>> out;
  for (auto& [id, inst] : instances_)
    if (deployment.empty() || inst->row.deployment == deployment) out.push_back(inst);
  return out;
}

std::string RuncRuntime::containerIdFor(const std::string& instanceId, int generation) const {
  std::string id = prefix_ + "-" + instanceId + "-" + std::to_string(generation);
  for (auto& c : id)
    if (c == '.') c = '-';
  return id;
}

std::string RuncRuntime::logBase(const std::string& instanceId, const std::string& stream) const {
  return config_.dataDir + "/logs/" + instanceId + "/" + stream + ".log";
}

void RuncRuntime::persist(const Instance& inst) {
  auto s = store_->putInstance(inst.row);
  if (!s.isOk()) spdlog::error("runtime: saving instance {}: {}", inst.row.id, s.message());
}

void RuncRuntime::emit(const std::string& deployment, const std::string& service,
                       const std::string& instance, const std::string& type,
                       const std::string& message) {
  RuntimeEvent e;
  e.atMs = clock_.nowMillis();
  e.deployment = deployment;
  e.service = service;
  e.instance = instance;
  e.type = type;
  e.message = message;
  if (auto r = store_->appendEvent(e); r.isOk()) {
    std::lock_guard lock(eventsMu_);
    lastEventSeq_ = std::max(lastEventSeq_, e.seq);
  }
  eventsCv_.notify_all();
  if (config_.metrics)
    config_.metrics
        ->counter("mercato_runtime_events_total{type=\"" + type + "\"}", "Runtime events by type")
        ->inc();
  spdlog::info("runtime: {} {} {}", type, instance.empty() ? deployment : instance, message);
}

Result<image::Image> RuncRuntime::resolveImage(const ServiceSpec& svc) {
  // The layout's own image (by platform when it holds several). Only the out-of-band
  // imageLayout names a host path; `image` is always a registry reference.
  if (!svc.imageLayout.empty()) return images_->importLayout(svc.imageLayout);
  return images_->pull(svc.image);
}

Result<std::string> RuncRuntime::allocateSubnet() {
  ASSIGN_OR_RETURN(auto used, store_->usedSubnets());
  // Another runtime on this host (another data dir, or a daemon whose containers outlived it)
  // may hold /24s of the same pool: any /24 with an address on a local interface is taken, or
  // two bridges would route the same addresses.
  ifaddrs* addrs = nullptr;
  if (::getifaddrs(&addrs) == 0) {
    for (ifaddrs* a = addrs; a; a = a->ifa_next) {
      if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
      uint32_t ip = ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
      in_addr net{};
      net.s_addr = htonl(ip & 0xFFFFFF00u);
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &net, buf, sizeof buf);
      used.push_back(std::string(buf) + "/24");
    }
    ::freeifaddrs(addrs);
  }
  return host::allocateSubnet(used, config_.subnetPool);
}

InstanceStatus RuncRuntime::toStatus(const Instance& inst) const {
  InstanceStatus s;
  s.id = inst.row.id;
  s.service = inst.row.service;
  s.ordinal = inst.row.ordinal;
  s.state = stateFromName(inst.row.state);
  s.ready = inst.ready && s.state == InstanceState::kRunning;
  s.ip = inst.row.ip;
  s.ports = inst.ports;
  s.startedAtMs = inst.row.startedAtMs;
  s.finishedAtMs = inst.row.finishedAtMs;
  s.exitCode = inst.row.exitCode;
  s.signal = inst.row.signal;
  s.oomKilled = inst.row.oomKilled;
  s.restarts = inst.row.restarts;
  s.message = inst.row.message;
  return s;
}

Capabilities RuncRuntime::capabilities() const {
  Capabilities c;
  c.backend = "runc";
  c.scaleToZero = true;
  c.exec = true;
  c.execSession = true;
  c.execTty = true;
  c.networkIsolation = true;
  c.gpu = false;
  c.jobs = true;
  c.logFollow = true;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Queries

Result<DeploymentStatus> RuncRuntime::status(const std::string& deployment) {
  auto d = findDeployment(deployment);
  if (!d) return notFound("no deployment " + deployment);
  DeploymentStatus st;
  st.id = d->row.id;
  st.owner = d->spec.owner;
  st.state = d->row.state;
  st.createdAtMs = d->row.createdAtMs;
  auto insts = instancesOf(deployment);
  std::lock_guard lock(mu_);  // consistent snapshot of the instance records
  for (const auto& svc : d->spec.services) {
    ServiceStatus ss;
    ss.name = svc.name;
    ss.kind = svc.kind;
    ss.replicas = svc.replicas;
    if (auto img = d->images.find(svc.name); img != d->images.end())
      ss.imageDigest = img->second.digest;
    for (const auto& inst : insts) {
      if (inst->row.service != svc.name) continue;
      ss.instances.push_back(toStatus(*inst));
      if (ss.instances.back().ready) ++ss.ready;
    }
    st.services.push_back(std::move(ss));
  }
  bool anyFailed = false;
  for (const auto& s : st.services)
    for (const auto& i : s.instances)
      if (i.state == InstanceState::kFailed || i.state == InstanceState::kBackoff) anyFailed = true;
  if (st.state == "running" && anyFailed) st.state = "degraded";
  return st;
}

Result<std::vector<DeploymentStatus>> RuncRuntime::list() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, d] : deployments_) ids.push_back(id);
  }
  std::vector<DeploymentStatus> out;
  for (const auto& id : ids) {
    auto st = status(id);
    if (st.isOk()) out.push_back(std::move(*st));
  }
  return out;
}

Result<DeploymentStats> RuncRuntime::stats(const std::string& deployment) {
  auto d = findDeployment(deployment);
  if (d) {
    std::lock_guard op(d->opMu);
    for (auto& inst : instancesOf(deployment)) sample(*inst, false);
  }
  ASSIGN_OR_RETURN(auto rows, store_->usageOfDeployment(deployment));
  if (!d && rows.empty()) return notFound("no deployment " + deployment);
  DeploymentStats out;
  out.deployment = deployment;
  out.sampledAtMs = clock_.nowMillis();
  for (const auto& r : rows) {
    InstanceStats is;
    is.instance = r.instance;
    is.usage = r.closed;
    is.usage += r.current;
    is.memoryBytes = r.lastMemoryBytes;
    {
      std::lock_guard lock(mu_);
      auto it = instances_.find(r.instance);
      is.running = it != instances_.end() && it->second->row.state == "running";
    }
    out.total += is.usage;
    out.instances.push_back(std::move(is));
  }
  return out;
}

Status RuncRuntime::logs(const std::string& deployment, const LogOptions& options,
                         const LogSink& sink) {
  auto d = findDeployment(deployment);
  if (!d) return notFound("no deployment " + deployment);
  std::vector<std::string> selected;
  for (auto& inst : instancesOf(deployment)) {
    if (!options.service.empty() && inst->row.service != options.service) continue;
    if (!options.instance.empty() && inst->row.id != options.instance) continue;
    selected.push_back(inst->row.id);
  }
  if (selected.empty() && !options.instance.empty())
    return notFound("deployment " + deployment + " has no instance " + options.instance);
  std::vector<std::string> streams;
  if (options.stdoutStream) streams.push_back("stdout");
  if (options.stderrStream) streams.push_back("stderr");
  std::mutex sinkMu;
  std::atomic<bool> stopped{false};
  auto deliver = [&](const std::string& inst, const std::string& stream, std::string text) {
    std::lock_guard lock(sinkMu);
    if (stopped) return false;
    if (!sink(LogLine{inst, stream, std::move(text)})) stopped = true;
    return !stopped.load();
  };
  std::vector<std::pair<std::string, std::string>> followed;  // (instance, stream)
  for (const auto& inst : selected) {
    for (const auto& stream : streams) {
      auto tail = host::tailLines(logBase(inst, stream), options.tail);
      if (tail.isOk())
        for (auto& line : *tail)
          if (!deliver(inst, stream, line)) return Status();
      if (options.follow) followed.push_back({inst, stream});
    }
  }
  if (!options.follow) return Status();
  std::vector<std::thread> threads;
  for (const auto& [inst, stream] : followed) {
    threads.emplace_back([&, inst, stream] {
      host::FollowOptions fo;
      fo.fromOffset = -1;  // tail above delivered the history
      fo.pollInterval = std::chrono::milliseconds(50);
      warnIfError(host::followLines(
                      logBase(inst, stream), fo,
                      [&](std::string_view line) { deliver(inst, stream, std::string(line)); },
                      [&] {
                        return stopped.load() || (options.cancelled && options.cancelled()) ||
                               !findDeployment(deployment);
                      }),
                  "runtime: following the " + stream + " log of " + inst);
    });
  }
  for (auto& t : threads) t.join();
  return Status();
}

Result<std::vector<RuntimeEvent>> RuncRuntime::events(uint64_t after, size_t limit,
                                                      int64_t waitMs) {
  if (waitMs > 0) {
    std::unique_lock lock(eventsMu_);
    eventsCv_.wait_for(lock, std::chrono::milliseconds(waitMs),
                       [&] { return lastEventSeq_ > after; });
  }
  return store_->events(after, limit);
}

}  // namespace mercato::runtime::runc
