// Test support for the runtime tests: the sample image in a real registry, temp dirs, and a
// snapshot of what exists on the host (netns, links, cgroups, mounts) to prove cleanup.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace mercato::runtime::testing_support {

// A docker-registry on loopback with the sample image pushed by our registry client, shared
// by the tests of one binary.
class SampleEnvironment {
 public:
  SampleEnvironment();
  ~SampleEnvironment();
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& sampleRef() const { return ref_; }  // "127.0.0.1:PORT/mercato/sample:v1"
  std::string registryHost() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string ref_, error_;
};

std::string makeTempDir(const std::string& prefix);
// A /16 for this test process's deployments, so tests running in parallel never share subnets.
std::string uniqueSubnetPool();
// The runtime's name prefix for a data dir (RuncRuntime::namePrefixFor).
std::string prefixOf(const std::string& dataDir);
bool linkExists(const std::string& name);
// The bridge of `deployment` in the runtime at dataDir (RuncRuntime names it so).
std::string bridgeOf(const std::string& dataDir, const std::string& deployment);
// Brings a runtime up over dataDir (whose daemon must be gone) and removes every deployment it
// finds, with whatever they left on the host: a test's cleanup on any exit, so a failed assertion
// leaves no bridge, NAT rule or container behind. Returns "" or what failed.
std::string removeAllDeployments(const std::string& dataDir);

struct HostSnapshot {
  std::vector<std::string> netns, links, cgroups, mounts, runcRoots, iptables;
  static HostSnapshot take();
  // True when any netns, link, cgroup, mount or iptables rule (filter, nat) contains `needle`.
  bool mentions(const std::string& needle) const;
  // Mounts below dataDir and non-empty instance dirs: what a clean runtime leaves none of.
  std::vector<std::string> leftoversOf(const std::string& dataDir) const;
};

}  // namespace mercato::runtime::testing_support
