// A separate process for the network tests (host_network_test runs it), for what one test
// process cannot show about itself:
//
//   host_network_helper netns-race fixed|unfixed
//     In a private mount namespace with a fresh tmpfs on /run (so /run/netns does not exist, as
//     on a new machine), interleaves createNetns() with `ip netns add`, deletes every namespace
//     again (deleteNetns, `ip netns delete`) and prints what happened, one "key: value" line per
//     step. "unfixed" skips prepareNetnsDir(), as createNetns did before the fix. Whatever is left
//     is unmounted before it exits, and the mount namespace dies with it, so no namespace
//     outlives the run.
//
//   host_network_helper bridge-rules BRIDGE SUBNET [--allow CIDR]... [--ns ADDR]...
//     Installs the host-wide chains and one bridge's rules as a process of its own would (a
//     restarted daemon, another process with the same data dir), then prints "bridge-rules: ok".
//
// Exit status: 0 when the run could be carried out (its findings are in the output), 2 on a
// usage or setup error.
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/strings.hpp"
#include "common/subprocess.hpp"
#include "runtime/runc/host/network.hpp"

namespace fs = std::filesystem;
using namespace mercato;
using namespace mercato::runtime::host;

namespace {

int usage() {
  std::cerr << "usage: host_network_helper netns-race fixed|unfixed\n"
               "       host_network_helper bridge-rules BRIDGE SUBNET [--allow CIDR]... "
               "[--ns ADDR]...\n";
  return 2;
}

std::string say(const Status& s) { return s.isOk() ? "ok" : "error: " + s.message(); }

// Mount points under /run/netns ("/run/netns" itself included when `withDir`), in mountinfo
// order, and how many of them are namespace files (nsfs).
struct Mounts {
  std::vector<std::string> points;
  int nsfs = 0;
};
Mounts netnsMounts(bool withDir) {
  Mounts m;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto words = split(line, ' ');
    if (words.size() < 7) continue;
    const std::string& point = words[4];
    bool under = startsWith(point, "/run/netns/");
    if (!under && !(withDir && point == "/run/netns")) continue;
    m.points.push_back(point);
    auto dash = line.find(" - ");
    if (under && dash != std::string::npos && line.compare(dash + 3, 5, "nsfs ") == 0) ++m.nsfs;
  }
  return m;
}

// Lazily unmounts /run/netns and everything below it, topmost first, in this mount namespace.
void detachNetnsMounts() {
  for (int round = 0; round < 20; ++round) {
    Mounts m = netnsMounts(true);
    if (m.points.empty()) break;
    for (auto it = m.points.rbegin(); it != m.points.rend(); ++it)
      (void)::umount2(it->c_str(), MNT_DETACH);
  }
}

Status ip(const std::vector<std::string>& args) {
  ProcessSpec spec;
  spec.argv = {"ip"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = std::chrono::seconds(30);
  auto r = runProcess(spec);
  if (!r.isOk()) return r.status();
  if (!r->ok()) return processFailure("ip", spec.argv, *r);
  return Status::ok();
}

int netnsRace(bool fixed) {
  // This process only: nothing it mounts or unmounts propagates to the host.
  if (::unshare(CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) {
    std::cerr << "private mount namespace: " << strerror(errno) << "\n";
    return 2;
  }
  // The copy of the host's mounts holds the namespaces of whatever else runs on the host now
  // (parallel tests): let go of them here, so that what follows counts only ours and keeps no
  // other namespace alive.
  detachNetnsMounts();
  std::string run = fs::canonical("/var/run").string();  // /run, normally
  if (::mount("tmpfs", run.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0) {
    std::cerr << "tmpfs on " << run << ": " << strerror(errno) << "\n";
    return 2;
  }
  if (fs::exists(kNetnsDir)) {
    std::cerr << kNetnsDir << " exists on a fresh tmpfs\n";
    return 2;
  }
  setPrepareNetnsDirForTesting(fixed);
  std::string base = "mctrace-" + std::to_string(::getpid()) + "-";
  std::string a = base + "a", b = base + "b", c = base + "c", d = base + "d";
  // Ours first, as on a new machine where mercato starts before anything ran `ip netns add`.
  std::cout << "create a: " << say(createNetns(a)) << "\n";
  std::cout << "create b: " << say(ip({"netns", "add", b})) << "\n";
  std::cout << "create c: " << say(createNetns(c)) << "\n";
  std::cout << "create d: " << say(ip({"netns", "add", d})) << "\n";
  std::cout << "namespace mounts: " << netnsMounts(false).nsfs << "\n";
  std::cout << "delete a: " << say(deleteNetns(a)) << "\n";
  std::cout << "delete b: " << say(ip({"netns", "delete", b})) << "\n";
  std::cout << "delete c: " << say(deleteNetns(c)) << "\n";
  std::cout << "delete d: " << say(ip({"netns", "delete", d})) << "\n";
  std::string files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kNetnsDir, ec))
    files += (files.empty() ? "" : " ") + e.path().filename().string();
  std::cout << "files left: " << (files.empty() ? "none" : files) << "\n";
  std::cout << "namespace mounts left: " << netnsMounts(false).nsfs << "\n";
  // Unmount whatever is left (covered mounts come free with the mount that covers them), so
  // every namespace is released before we exit.
  detachNetnsMounts();
  std::cout << "namespace mounts at exit: " << netnsMounts(false).nsfs << "\n";
  return 0;
}

int bridgeRules(int argc, char** argv) {
  if (argc < 4) return usage();
  NetworkAttachRequest r;
  r.bridge = argv[2];
  r.subnet = argv[3];
  for (int i = 4; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--allow")
      r.egressAllow.push_back(argv[i + 1]);
    else if (flag == "--ns")
      r.nameservers.push_back(argv[i + 1]);
    else
      return usage();
  }
  Status s = ensureIsolation();
  if (s.isOk()) s = ensureBridgeRules(r);
  std::cout << "bridge-rules: " << say(s) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string mode = argv[1];
  if (mode == "netns-race" && argc == 3 &&
      (std::string(argv[2]) == "fixed" || std::string(argv[2]) == "unfixed"))
    return netnsRace(std::string(argv[2]) == "fixed");
  if (mode == "bridge-rules") return bridgeRules(argc, argv);
  return usage();
}
