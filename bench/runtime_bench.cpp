// Runtime benchmarks on real components (root, runc, CNI, docker-registry):
//   start     — deploy() until the instance's HTTP port answers, over N starts with a warm image
//               cache; in the same run a bare `runc run -d` of the same image and hardened
//               config (host network, no shim, no CNI, no overlay) as the physical limit.
//   metering  — CPU-seconds reported by the runtime against known CPU burns.
// Prints a table and a JSON line per mode. See bench/RESULTS.md.
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

int runStart(Runtime& rt, runc::RuncRuntime& rr, const std::string& image, int runs) {
  // Warm the image cache (and the first-bridge path) outside the measurement.
  if (Status s = rt.deploy(webSpec("warm", image)); !s.isOk()) {
    std::fprintf(stderr, "warm deploy: %s\n", s.message().c_str());
    return 1;
  }
  (void)rt.remove("warm");

  std::vector<double> ours;
  for (int i = 0; i < runs; ++i) {
    std::string id = "start-" + std::to_string(i);
    auto t0 = Clk::now();
    if (Status s = rt.deploy(webSpec(id, image)); !s.isOk()) {
      std::fprintf(stderr, "deploy %s: %s\n", id.c_str(), s.message().c_str());
      return 1;
    }
    std::string ip = instanceIp(rt, id);
    if (ip.empty() || !waitHttp(ip + ":8080")) {
      std::fprintf(stderr, "%s never answered\n", id.c_str());
      return 1;
    }
    ours.push_back(ms(Clk::now() - t0));
    (void)rt.remove(id);
  }

  // Bare runc: the same image rootfs (overlay), the same hardened config, host network.
  auto img = rr.images().find(image);
  if (!img.isOk()) return 1;
  std::string dir = testing_support::makeTempDir("mct-bare");
  std::vector<double> bare;
  for (int i = 0; i < runs; ++i) {
    std::string bundle = dir + "/b" + std::to_string(i);
    auto rootfs = rr.images().prepareRootfs(*img, bundle);
    if (!rootfs.isOk()) return 1;
    host::ContainerConfig cc;
    cc.id = "mct-bare-" + std::to_string(::getpid()) + "-" + std::to_string(i);
    cc.rootfs = *rootfs;
    cc.args = img->config.entrypoint;
    int port = 20000 + (::getpid() % 20000) + i;
    cc.env = {"PORT=" + std::to_string(port)};
    cc.memoryBytes = 64 << 20;
    auto spec = host::makeOciSpec(cc);
    if (!spec.isOk()) return 1;
    auto& nss = (*spec)["linux"]["namespaces"];
    for (auto it = nss.begin(); it != nss.end();)
      it = (*it)["type"] == "network" ? nss.erase(it) : it + 1;
    if (!host::writeBundleConfig(bundle, *spec).isOk()) return 1;
    auto t0 = Clk::now();
    ProcessSpec p;
    // The detached container inherits runc's stdio: send it to /dev/null, or the pipes that
    // runProcess reads would stay open for the container's life.
    p.argv = {"/bin/sh", "-c",
              "exec runc --root " + dir + "/runc run -d --bundle " + bundle + " " + cc.id +
                  " </dev/null >/dev/null 2>&1"};
    auto r = runProcess(p);
    if (!r.isOk() || !r->ok() || !waitHttp("127.0.0.1:" + std::to_string(port))) {
      std::fprintf(stderr, "bare runc run failed: %s\n", r.isOk() ? r->err.c_str() : "");
      return 1;
    }
    bare.push_back(ms(Clk::now() - t0));
    ProcessSpec k;
    k.argv = {"runc", "--root", dir + "/runc", "delete", "-f", cc.id};
    (void)runProcess(k);  // best effort: the next run uses a new id
    (void)rr.images().releaseRootfs(bundle);
  }
  fs::remove_all(dir);
  double p50 = percentile(ours, 0.5), p99 = percentile(ours, 0.99);
  double b50 = percentile(bare, 0.5), b99 = percentile(bare, 0.99);
  std::printf("%-28s %10s %10s\n", "start latency (ms)", "p50", "p99");
  std::printf("%-28s %10.1f %10.1f\n", "mercato deploy -> HTTP 200", p50, p99);
  std::printf("%-28s %10.1f %10.1f\n", "bare runc run -d -> HTTP", b50, b99);
  std::printf("%-28s %10.2f %10.2f\n", "ratio", p50 / b50, p99 / b99);
  nlohmann::json j = {{"mode", "start"},      {"runs", runs},     {"p50Ms", p50},
                      {"p99Ms", p99},         {"bareP50Ms", b50}, {"bareP99Ms", b99},
                      {"ratioP50", p50 / b50}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int runMetering(Runtime& rt, const std::string& image) {
  auto spec = webSpec("meter", image);
  if (Status s = rt.deploy(spec); !s.isOk()) return 1;
  if (!rt.waitReady("meter", "web", 1, std::chrono::seconds(20)).isOk()) return 1;
  std::string ip = instanceIp(rt, "meter");
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
      if (!r.isOk() || r->status != 200) return 1;
      auto after = rt.stats("meter");
      double metered = (after->total.cpuSeconds - before->total.cpuSeconds) * 1000;
      double err = (metered - burn) / burn;
      worst = std::max(worst, std::abs(err));
      std::printf("%-12d %12.1f %11.2f%%\n", burn, metered, err * 100);
      rows.push_back({{"burnMs", burn}, {"meteredMs", metered}});
    }
  }
  (void)rt.remove("meter");
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
  app.add_option("--runs", runs, "starts to time");
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
  std::string dataDir = testing_support::makeTempDir("mct-bench");
  RuntimeConfig c;
  c.dataDir = dataDir;
  c.clock = &systemClock();
  c.subnetPool = testing_support::uniqueSubnetPool();
  auto rt = runc::RuncRuntime::create(c);
  if (!rt.isOk()) {
    std::fprintf(stderr, "runtime: %s\n", rt.status().message().c_str());
    return 1;
  }
  int rc = 0;
  if (mode == "start" || mode == "all") rc |= runStart(**rt, **rt, env.sampleRef(), runs);
  if (mode == "metering" || mode == "all") rc |= runMetering(**rt, env.sampleRef());
  rt->reset();
  fs::remove_all(dataDir);
  return rc;
}
