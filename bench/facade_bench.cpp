// Facade benchmark: wrk against (a) the upstream app directly, (b) the facade in front of it and
// (c) nginx configured as a keep-alive reverse proxy in front of the same app, with the same wrk
// settings; then the facade's memory per route (RSS delta for N routes scaled to zero).
// Needs `wrk` and `nginx` on PATH. Prints a table and one JSON line. See bench/RESULTS.md.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "net/server.hpp"
#include "provider/facade/facade.hpp"

using namespace mercato;
namespace fs = std::filesystem;

namespace {

struct StaticBackend final : provider::FacadeBackend {
  uint16_t port = 0;
  std::vector<provider::Upstream> readyUpstreams(const std::string& dep) override {
    if (dep != "bench") return {};
    return {{"127.0.0.1", port}};
  }
  Status scaleTo(const std::string&, int) override { return Status::ok(); }
};

uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

double toMs(double v, const std::string& unit) {
  if (unit == "us") return v / 1000;
  if (unit == "s") return v * 1000;
  return v;
}

struct WrkResult {
  double rps = 0, p50 = 0, p99 = 0;
  long errors = 0;
};

WrkResult wrk(const std::string& url, const std::string& hostHeader, int threads, int conns,
              int seconds) {
  std::string cmd = "wrk -t" + std::to_string(threads) + " -c" + std::to_string(conns) + " -d" +
                    std::to_string(seconds) + "s --latency ";
  if (!hostHeader.empty()) cmd += "-H 'Host: " + hostHeader + "' ";
  cmd += url + " 2>&1";
  const std::string out = run(cmd);
  WrkResult r;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    r.rps = std::stod(m[1]);
  }
  if (std::regex_search(out, m, std::regex(R"(\n\s+50%\s+([0-9.]+)(us|ms|s))"))) {
    r.p50 = toMs(std::stod(m[1]), m[2]);
  }
  if (std::regex_search(out, m, std::regex(R"(\n\s+99%\s+([0-9.]+)(us|ms|s))"))) {
    r.p99 = toMs(std::stod(m[1]), m[2]);
  }
  if (std::regex_search(out, m, std::regex(R"(Non-2xx or 3xx responses:\s+([0-9]+))"))) {
    r.errors += std::stol(m[1]);
  }
  if (std::regex_search(
          out, m,
          std::regex(
              R"(Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+))"))) {
    r.errors += std::stol(m[1]) + std::stol(m[2]) + std::stol(m[3]) + std::stol(m[4]);
  }
  if (r.rps == 0) std::fprintf(stderr, "wrk output for %s:\n%s\n", url.c_str(), out.c_str());
  return r;
}

long rssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"facade benchmark: wrk direct vs facade vs nginx, and memory per route"};
  int seconds = 5, conns = 32, threads = 2, proxyThreads = 1, routes = 1000;
  app.add_option("--duration", seconds, "seconds per wrk run");
  app.add_option("--connections", conns, "wrk connections");
  app.add_option("--threads", threads, "wrk threads");
  app.add_option("--proxy-threads", proxyThreads, "facade I/O threads = nginx workers");
  app.add_option("--routes", routes, "routes for the memory measurement");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  // The app: a fixed 100-byte body.
  net::Router router;
  router.add("GET", "/", [](const net::HttpRequest&) {
    return net::HttpResponse::text(200, std::string(100, 'x'));
  });
  net::ServerOptions serverOptions;
  serverOptions.threads = 1;
  auto upstream = net::HttpServer::create(serverOptions, std::move(router));
  if (!upstream.isOk()) {
    std::fprintf(stderr, "%s\n", upstream.status().toString().c_str());
    return 1;
  }
  (*upstream)->start();

  StaticBackend backend;
  backend.port = (*upstream)->port();
  provider::FacadeOptions options;
  options.threads = proxyThreads;
  auto facade = provider::Facade::create(options, backend, systemClock());
  if (!facade.isOk()) return 1;
  (*facade)->start();
  provider::RouteConfig route;
  route.deployment = "bench";
  route.minReplicas = 1;
  route.maxReplicas = 1;
  (void)(*facade)->addRoute(route);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the route learns its upstream

  // nginx as the reference proxy.
  const fs::path dir = fs::temp_directory_path() / ("facade-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const uint16_t nginxPort = freePort();
  {
    std::ofstream conf(dir / "nginx.conf");
    conf << "worker_processes " << proxyThreads << ";\n"
         << "pid " << (dir / "nginx.pid").string() << ";\n"
         << "error_log " << (dir / "error.log").string() << " warn;\n"
         << "events { worker_connections 4096; }\n"
         << "http {\n  access_log off;\n"
         << "  client_body_temp_path " << dir.string() << "/body;\n"
         << "  proxy_temp_path " << dir.string() << "/proxy;\n"
         << "  fastcgi_temp_path " << dir.string() << "/fcgi;\n"
         << "  uwsgi_temp_path " << dir.string() << "/uwsgi;\n"
         << "  scgi_temp_path " << dir.string() << "/scgi;\n"
         << "  upstream app { server 127.0.0.1:" << backend.port << "; keepalive 64; }\n"
         << "  server {\n    listen 127.0.0.1:" << nginxPort << ";\n"
         << "    location / {\n      proxy_pass http://app;\n      proxy_http_version 1.1;\n"
         << "      proxy_set_header Connection \"\";\n"
         << "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
         << "    }\n  }\n}\n";
  }
  const std::string nginxCmd =
      "nginx -p " + dir.string() + " -c " + (dir / "nginx.conf").string() + " -g 'daemon off;'";
  pid_t nginx = fork();
  if (nginx == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + nginxCmd + " 2>" + (dir / "stderr").string()).c_str(),
          nullptr);
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  const std::string base = "http://127.0.0.1:";
  // Warm-up, then the measured runs.
  wrk(base + std::to_string(backend.port) + "/", "", threads, conns, 1);
  const WrkResult direct =
      wrk(base + std::to_string(backend.port) + "/", "", threads, conns, seconds);
  wrk((*facade)->url() + "/", "bench.apps.localhost", threads, conns, 1);
  const WrkResult viaFacade =
      wrk((*facade)->url() + "/", "bench.apps.localhost", threads, conns, seconds);
  wrk(base + std::to_string(nginxPort) + "/", "", threads, conns, 1);
  const WrkResult viaNginx =
      wrk(base + std::to_string(nginxPort) + "/", "", threads, conns, seconds);
  kill(nginx, SIGQUIT);
  waitpid(nginx, nullptr, 0);

  // Memory per route: a separate facade, N routes at min 0 (no instances), with metrics.
  MetricsRegistry metrics;
  StaticBackend empty;
  provider::FacadeOptions memOptions;
  memOptions.metrics = &metrics;
  auto memFacade = provider::Facade::create(memOptions, empty, systemClock());
  (*memFacade)->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const long before = rssKb();
  for (int i = 0; i < routes; ++i) {
    provider::RouteConfig r;
    r.deployment = "dep-" + std::to_string(i);
    r.hostname = "app-" + std::to_string(i);
    (void)(*memFacade)->addRoute(r);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long after = rssKb();
  const double bytesPerRoute = (after - before) * 1024.0 / routes;

  std::printf("wrk -t%d -c%d -d%ds --latency; proxies with %d thread(s)/worker(s)\n", threads,
              conns, seconds, proxyThreads);
  std::printf("%-8s %12s %10s %10s %8s\n", "target", "req/s", "p50 ms", "p99 ms", "errors");
  for (auto [name, r] : {std::pair{"direct", direct}, std::pair{"facade", viaFacade},
                         std::pair{"nginx", viaNginx}}) {
    std::printf("%-8s %12.0f %10.3f %10.3f %8ld\n", name, r.rps, r.p50, r.p99, r.errors);
  }
  const double ratio = viaNginx.rps > 0 ? viaFacade.rps / viaNginx.rps : 0;
  std::printf("facade/nginx req/s: %.2fx; added p99 vs direct: facade %.3f ms, nginx %.3f ms\n",
              ratio, viaFacade.p99 - direct.p99, viaNginx.p99 - direct.p99);
  std::printf("memory: %d routes scaled to zero: %ld KiB RSS, %.0f bytes/route\n", routes,
              after - before, bytesPerRoute);
  nlohmann::json j{{"bench", "facade"},
                   {"wrk", {{"threads", threads}, {"connections", conns}, {"seconds", seconds}}},
                   {"proxyThreads", proxyThreads},
                   {"direct", {{"rps", direct.rps}, {"p99Ms", direct.p99}}},
                   {"facade", {{"rps", viaFacade.rps}, {"p99Ms", viaFacade.p99}}},
                   {"nginx", {{"rps", viaNginx.rps}, {"p99Ms", viaNginx.p99}}},
                   {"facadeOverNginx", ratio},
                   {"bytesPerRoute", bytesPerRoute}};
  std::printf("%s\n", j.dump().c_str());
  (*facade)->stop();
  (*memFacade)->stop();
  (*upstream)->stop();
  fs::remove_all(dir);
  return 0;
}
