// Runtime benchmarks on real components (root, runc, CNI, docker-registry):
//   start     — deploy() until the instance's HTTP port answers, over N starts with a warm image
//               cache, with the tenant sandbox on (seccomp, user namespace, disk quota); in the
//               same run a bare `runc run -d` of the same image and hardened config without
//               seccomp (host network, no shim, no CNI, no user namespace, no disk) as the
//               physical limit, and the same with seccomp. --ablations adds starts without the
//               disk quota and without the user namespace: the differences are their costs.
//   metering  — CPU-seconds reported by the runtime against known CPU burns.
// Prints a table and a JSON line per mode. See bench/RESULTS.md.
// Any failure (of ours or of the bare-runc reference) exits 1 with the reason and prints no
// ratio; what the run created (deployments, bare containers, rootfs mounts) is removed on every
// way out.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/subprocess.hpp"
#include "net/client.hpp"
#include "runtime/runc/host/oci_spec.hpp"
#include "runtime/runc/image/image_store.hpp"
#include "runtime/runc/runc_runtime.hpp"
#include "runtime_fixture.hpp"

using namespace mercato;
using namespace mercato::runtime;
using Clk = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

// Runs `f` when the scope ends, however it ends: the bench's failure paths return early.
template <typename F>
struct Defer {
  F f;
  ~Defer() { f(); }
};
template <typename F>
Defer(F) -> Defer<F>;

double ms(Clk::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Polls GET / until it answers 200 (or 10 s pass). Returns false on timeout.
bool waitHttp(const std::string& hostPort) {
  auto deadline = Clk::now() + std::chrono::seconds(10);
  while (Clk::now() < deadline) {
    auto c = net::HttpClient::create(
        "http://" + hostPort, net::ClientOptions::withTimeout(std::chrono::milliseconds(500)));
    if (c.isOk()) {
      auto r = (*c)->request("GET", "/");
      if (r.isOk() && r->status == 200) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

DeploymentSpec webSpec(const std::string& id, const std::string& image) {
  DeploymentSpec s;
  s.id = id;
  ServiceSpec svc;
  svc.name = "web";
  svc.image = image;
  svc.resources.memoryBytes = 64 << 20;
  s.services.push_back(svc);
  return s;
}

std::string instanceIp(Runtime& rt, const std::string& dep) {
  for (int i = 0; i < 2000; ++i) {
    auto st = rt.status(dep);
    if (st.isOk() && !st->services[0].instances.empty() && !st->services[0].instances[0].ip.empty())
      return st->services[0].instances[0].ip;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return "";
}

// One start of ours: deploy() until the instance answers HTTP; the deployment is removed after.
Result<double> timeOneStart(Runtime& rt, const std::string& id, const std::string& image) {
  Defer removeIt{[&] { (void)rt.remove(id); }};
  auto t0 = Clk::now();
  RETURN_IF_ERROR(rt.deploy(webSpec(id, image)));
  std::string ip = instanceIp(rt, id);
  if (ip.empty() || !waitHttp(ip + ":8080")) return internalError(id + " never answered");
  return ms(Clk::now() - t0);
}

// One bare `runc run -d` of the same image rootfs (overlay) and hardened config, host network:
// the physical limit. `seccomp`: with the default profile (its cost alone).
Result<double> timeOneBare(runc::RuncRuntime& rr, const image::Image& img, const std::string& dir,
                           int i, bool seccomp) {
  std::string bundle = dir + "/b" + std::to_string(i);
  ASSIGN_OR_RETURN(auto rootfs, rr.images().prepareRootfs(img, bundle));
  Defer releaseRootfs{[&] { (void)rr.images().releaseRootfs(bundle); }};
  host::ContainerConfig cc;
  cc.id = "mct-bare-" + std::to_string(::getpid()) + "-" + std::to_string(i);
  cc.rootfs = rootfs;
  cc.args = img.config.entrypoint;
  int port = 20000 + (::getpid() % 20000) + i % 1000;
  cc.env = {"PORT=" + std::to_string(port)};
  cc.memoryBytes = 64 << 20;
  cc.seccomp = seccomp;
  ASSIGN_OR_RETURN(auto spec, host::makeOciSpec(cc));
  auto& nss = spec["linux"]["namespaces"];
  for (auto it = nss.begin(); it != nss.end();)
    it = (*it)["type"] == "network" ? nss.erase(it) : it + 1;
  RETURN_IF_ERROR(host::writeBundleConfig(bundle, spec));
  // Deleted however this iteration ends (runc delete -f of a container that never started is a
  // harmless error).
  Defer deleteIt{[&] {
    ProcessSpec k;
    k.argv = {"runc", "--root", dir + "/runc", "delete", "-f", cc.id};
    k.timeout = std::chrono::seconds(30);
    (void)runProcess(k);
  }};
  auto t0 = Clk::now();
  ProcessSpec p;
  // The detached container inherits runc's stdio: send it to /dev/null, or the pipes that
  // runProcess reads would stay open for the container's life.
  p.argv = {"/bin/sh", "-c",
            "exec runc --root " + dir + "/runc run -d --bundle " + bundle + " " + cc.id +
                " </dev/null >/dev/null 2>&1"};
  p.timeout = std::chrono::seconds(30);
  ASSIGN_OR_RETURN(auto r, runProcess(p));
  if (!r.ok()) return internalError("`runc run -d` failed: " + r.describe() + " " + r.err);
  if (!waitHttp("127.0.0.1:" + std::to_string(port)))
    return internalError("container " + cc.id + " never answered on port " + std::to_string(port));
  return ms(Clk::now() - t0);
}

struct Variant {
  std::string name;
  Runtime* rt;
  std::vector<double> ms;
};

// Starts are interleaved across the variants and the references, one of each per round, so that
// the machine's noise falls on all of them alike.
int runStart(std::vector<Variant>& ours, runc::RuncRuntime& rr, const std::string& image,
             int runs) {
  for (auto& v : ours) {
    // Warm the image cache (and the first-bridge path, the disk template) outside the timing.
    auto warm = timeOneStart(*v.rt, "warm", image);
    if (!warm.isOk()) {
      std::fprintf(stderr, "%s: warm start: %s\n", v.name.c_str(), warm.status().message().c_str());
      return 1;
    }
  }
  // The references: when they do not run, there is no ratio to print.
  auto img = rr.images().find(image);
  if (!img.isOk()) {
    std::fprintf(stderr, "reference (bare runc): image %s: %s\n", image.c_str(),
                 img.status().toString().c_str());
    return 1;
  }
  std::string dir = testing_support::makeTempDir("mct-bare");
  Defer removeDir{[&] {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }};
  std::vector<double> bare, bareSeccomp;
  for (int i = 0; i < runs; ++i) {
    for (auto& v : ours) {
      auto t = timeOneStart(*v.rt, "start-" + std::to_string(i), image);
      if (!t.isOk()) {
        std::fprintf(stderr, "%s: %s\n", v.name.c_str(), t.status().message().c_str());
        return 1;
      }
      v.ms.push_back(*t);
    }
    for (bool seccomp : {false, true}) {
      auto t = timeOneBare(rr, *img, dir, 2 * i + (seccomp ? 1 : 0), seccomp);
      if (!t.isOk()) {
        std::fprintf(stderr, "reference (bare runc%s): %s\n", seccomp ? " + seccomp" : "",
                     t.status().toString().c_str());
        return 1;
      }
      (seccomp ? bareSeccomp : bare).push_back(*t);
    }
  }
  double b50 = percentile(bare, 0.5), b99 = percentile(bare, 0.99);
  std::printf("%-44s %10s %10s %8s\n", "start latency (ms)", "p50", "p99", "x bare");
  nlohmann::json variants = nlohmann::json::object();
  for (const auto& v : ours) {
    double p50 = percentile(v.ms, 0.5), p99 = percentile(v.ms, 0.99);
    std::printf("%-44s %10.1f %10.1f %8.2f\n", ("mercato deploy -> HTTP 200, " + v.name).c_str(),
                p50, p99, p50 / b50);
    variants[v.name] = {{"p50Ms", p50}, {"p99Ms", p99}, {"ratioP50", p50 / b50}};
  }
  double s50 = percentile(bareSeccomp, 0.5), s99 = percentile(bareSeccomp, 0.99);
  std::printf("%-44s %10.1f %10.1f %8.2f\n", "bare runc run -d -> HTTP, seccomp", s50, s99,
              s50 / b50);
  std::printf("%-44s %10.1f %10.1f %8.2f\n", "bare runc run -d -> HTTP (the reference)", b50, b99,
              1.0);
  nlohmann::json j = {{"mode", "start"},        {"runs", runs},     {"variants", variants},
                      {"bareP50Ms", b50},       {"bareP99Ms", b99}, {"bareSeccompP50Ms", s50},
                      {"bareSeccompP99Ms", s99}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int runMetering(Runtime& rt, const std::string& image) {
  auto spec = webSpec("meter", image);
  Defer removeIt{[&] { (void)rt.remove("meter"); }};
  if (Status s = rt.deploy(spec); !s.isOk()) {
    std::fprintf(stderr, "metering: deploy: %s\n", s.toString().c_str());
    return 1;
  }
  if (Status s = rt.waitReady("meter", "web", 1, std::chrono::seconds(20)); !s.isOk()) {
    std::fprintf(stderr, "metering: not ready: %s\n", s.toString().c_str());
    return 1;
  }
  std::string ip = instanceIp(rt, "meter");
  if (ip.empty()) {
    std::fprintf(stderr, "metering: the instance has no IP\n");
    return 1;
  }
  std::printf("%-12s %12s %12s %9s\n", "burn (ms)", "metered (ms)", "error", "");
  double worst = 0;
  nlohmann::json rows = nlohmann::json::array();
  for (int burn : {200, 500, 1000, 2000}) {
    for (int rep = 0; rep < 3; ++rep) {
      auto before = rt.stats("meter");
      auto c = net::HttpClient::create("http://" + ip + ":8080",
                                       net::ClientOptions::withTimeout(std::chrono::seconds(30)));
      if (!c.isOk()) return 1;
      auto r = (*c)->request("GET", "/burn?ms=" + std::to_string(burn));
      if (!r.isOk() || r->status != 200) {
        std::fprintf(stderr, "metering: GET /burn?ms=%d: %s\n", burn,
                     r.isOk() ? ("HTTP " + std::to_string(r->status)).c_str()
                              : r.status().toString().c_str());
        return 1;
      }
      auto after = rt.stats("meter");
      if (!before.isOk() || !after.isOk()) {
        std::fprintf(stderr, "metering: stats: %s\n",
                     (before.isOk() ? after.status() : before.status()).toString().c_str());
        return 1;
      }
      double metered = (after->total.cpuSeconds - before->total.cpuSeconds) * 1000;
      double err = (metered - burn) / burn;
      worst = std::max(worst, std::abs(err));
      std::printf("%-12d %12.1f %11.2f%%\n", burn, metered, err * 100);
      rows.push_back({{"burnMs", burn}, {"meteredMs", metered}});
    }
  }
  std::printf("worst error: %.2f%%\n", worst * 100);
  std::printf(
      "%s\n",
      nlohmann::json({{"mode", "metering"}, {"worstError", worst}, {"rows", rows}}).dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"runtime benchmarks"};
  std::string mode = "all";
  int runs = 50;
  app.add_option("--mode", mode, "start | metering | all");
  app.add_option("--runs", runs, "starts to time")->check(CLI::PositiveNumber);
  bool ablations = false;
  app.add_flag("--ablations", ablations,
               "also time starts without the disk quota and without the user namespace");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "runtime_bench needs root (runc, CNI)\n");
    return 2;
  }
  testing_support::SampleEnvironment env;
  if (!env.ok()) {
    std::fprintf(stderr, "sample environment: %s\n", env.error().c_str());
    return 1;
  }
  // The sandbox as shipped, then without each of its parts: the difference is the part's cost.
  struct Setup {
    const char* name;
    bool userns, quota;
  };
  std::vector<Setup> setups = {{"sandbox (seccomp+userns+disk)", true, true}};
  if (ablations) {
    setups.push_back({"without the disk quota", true, false});
    setups.push_back({"without the user namespace", false, true});
  }
  std::vector<std::string> dirs;
  std::vector<std::unique_ptr<runc::RuncRuntime>> runtimes;
  Defer cleanup{[&] {
    runtimes.clear();
    std::error_code ec;
    for (const auto& d : dirs) fs::remove_all(d, ec);
  }};
  std::vector<Variant> variants;
  for (size_t k = 0; k < setups.size(); ++k) {
    dirs.push_back(testing_support::makeTempDir("mct-bench"));
    RuntimeConfig c;
    c.dataDir = dirs.back();
    c.clock = &systemClock();
    c.subnetPool = "10." + std::to_string(100 + (::getpid() + 37 * k) % 150) + ".0.0/16";
    c.sandbox.userNamespaces = setups[k].userns;
    c.sandbox.diskQuotas = setups[k].quota;
    auto rt = runc::RuncRuntime::create(c);
    if (!rt.isOk()) {
      std::fprintf(stderr, "runtime (%s): %s\n", setups[k].name, rt.status().message().c_str());
      return 1;
    }
    runtimes.push_back(std::move(*rt));
    variants.push_back({setups[k].name, runtimes.back().get(), {}});
  }
  int rc = 0;
  if (mode == "start" || mode == "all")
    rc |= runStart(variants, *runtimes.front(), env.sampleRef(), runs);
  if (mode == "metering" || mode == "all") rc |= runMetering(*runtimes.front(), env.sampleRef());
  return rc;
}
