#include "runtime_fixture.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.hpp"
#include "common/subprocess.hpp"
#include "fixtures.hpp"
#include "runtime/runc/host/network.hpp"
#include "runtime/runc/runc_runtime.hpp"
#include "runtime/runtime.hpp"

namespace mercato::runtime::testing_support {

namespace fs = std::filesystem;

std::string makeTempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) return "";
  // Container root (an unprivileged uid in its user namespace) must pass through it.
  ::chmod(tmpl.c_str(), 0711);
  return tmpl;
}

std::string uniqueSubnetPool() {
  return "10." + std::to_string(100 + ::getpid() % 150) + ".0.0/16";
}

std::string prefixOf(const std::string& dataDir) {
  return runc::RuncRuntime::namePrefixFor(dataDir);
}

struct SampleEnvironment::Impl {
  mercato::testing::RegistryProcess registry;
};

SampleEnvironment::SampleEnvironment() : impl_(std::make_unique<Impl>()) {
  if (Status s = impl_->registry.start(); !s.isOk()) {
    error_ = "starting docker-registry: " + s.message();
    return;
  }
  auto ref = mercato::testing::pushSampleImage(impl_->registry);
  if (!ref.isOk()) {
    error_ = "pushing the sample image: " + ref.status().message();
    return;
  }
  ref_ = *ref;
}

SampleEnvironment::~SampleEnvironment() = default;

std::string SampleEnvironment::registryHost() const { return impl_->registry.host(); }

bool linkExists(const std::string& name) { return fs::exists("/sys/class/net/" + name); }

std::string bridgeOf(const std::string& dataDir, const std::string& deployment) {
  return runtime::host::bridgeNameFor(prefixOf(dataDir) + "/" + deployment);
}

std::string removeAllDeployments(const std::string& dataDir) {
  if (!fs::exists(dataDir)) return "";
  RuntimeConfig c;
  c.dataDir = dataDir;
  c.clock = &systemClock();
  auto rt = createRuntime(c);  // recovers: re-adopts what runs, removes orphans
  if (!rt.isOk()) return "runtime over " + dataDir + ": " + rt.status().message();
  auto all = (*rt)->list();
  if (!all.isOk()) return all.status().message();
  std::string errors;
  for (const auto& d : *all)
    if (Status s = (*rt)->remove(d.id); !s.isOk()) errors += d.id + ": " + s.message() + "; ";
  return errors;
}

namespace {
std::vector<std::string> lines(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  ProcessSpec p;
  p.argv = argv;
  auto r = runProcess(p);
  if (!r.isOk()) return out;
  std::istringstream in(r->out);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
}  // namespace

HostSnapshot HostSnapshot::take() {
  HostSnapshot s;
  s.netns = lines({"ip", "netns", "list"});
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/class/net", ec))
    s.links.push_back(e.path().filename().string());
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    fs::path m = h.path() / "mercato";
    if (!fs::is_directory(m, ec)) continue;
    for (const auto& c : fs::directory_iterator(m, ec)) s.cgroups.push_back(c.path().string());
  }
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string l; std::getline(mi, l);) s.mounts.push_back(l);
  s.iptables = lines({"iptables-save"});  // filter and nat: isolation and NAT rules
  return s;
}

bool HostSnapshot::mentions(const std::string& needle) const {
  for (const auto* v : {&netns, &links, &cgroups, &mounts, &iptables})
    for (const auto& x : *v)
      if (x.find(needle) != std::string::npos) return true;
  return false;
}

std::vector<std::string> HostSnapshot::leftoversOf(const std::string& dataDir) const {
  std::vector<std::string> out;
  for (const auto& m : mounts)
    if (m.find(" " + dataDir + "/") != std::string::npos) out.push_back("mount: " + m);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(dataDir) / "instances", ec))
    out.push_back("instance dir: " + e.path().string());
  return out;
}

}  // namespace mercato::runtime::testing_support
