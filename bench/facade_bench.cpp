// Facade benchmark: wrk against (a) the upstream app directly, (b) the facade in front of it and
// (c) nginx configured as a keep-alive reverse proxy in front of the same app, with the same wrk
// settings; then the facade's memory per route (RSS delta for N routes scaled to zero).
//
// Two loads, each run against all three targets in the same process run:
//  - saturated: `wrk -tT -cC` closed loop, as fast as the machine goes. On a small shared
//    machine, where wrk, the app and the proxy compete for the same cores, its latency is
//    mostly queueing (Little's law: mean latency ~ connections / throughput).
//  - paced: `wrk -t1 -cP` with a Lua `delay()` of D ms between a connection's requests, far
//    below saturation, so the latency is the proxy's own added hop.
// For each target it also reports CPU time per request: the bench process's CPU (the app, plus
// the facade when it is the target) and nginx's worker CPU, divided by the requests served.
// "added p99" is always the target's p99 minus direct's p99 of the same load in the same run.
// Needs `wrk` and `nginx` on PATH. Prints a table and one JSON line. See bench/RESULTS.md.
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
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
  long requests = 0;
  double cpuUsPerRequest = 0;  // of the process(es) serving it, see the file comment
};

// CPU seconds (user + system) of this process, and of a process by pid from /proc.
double selfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double pidCpuSeconds(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Load {
  int threads = 2;
  int conns = 32;
  int seconds = 5;
  std::string script;  // a wrk Lua script ("" = none)
};

WrkResult wrk(const std::string& url, const std::string& hostHeader, const Load& load,
              pid_t alsoCount = 0, int seconds = 0) {
  if (seconds == 0) seconds = load.seconds;
  std::string cmd = "wrk -t" + std::to_string(std::min(load.threads, load.conns)) + " -c" +
                    std::to_string(load.conns) + " -d" + std::to_string(seconds) + "s --latency ";
  if (!load.script.empty()) cmd += "-s " + load.script + " ";
  if (!hostHeader.empty()) cmd += "-H 'Host: " + hostHeader + "' ";
  cmd += url + " 2>&1";
  const double cpuBefore = selfCpuSeconds() + pidCpuSeconds(alsoCount);
  const std::string out = run(cmd);
  const double cpu = selfCpuSeconds() + pidCpuSeconds(alsoCount) - cpuBefore;
  WrkResult r;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(([0-9]+) requests in )"))) {
    r.requests = std::stol(m[1]);
    if (r.requests > 0) r.cpuUsPerRequest = cpu * 1e6 / static_cast<double>(r.requests);
  }
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

pid_t firstChild(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child = 0;
  in >> child;
  return child;
}

struct Row {
  const char* target;
  WrkResult r;
};

void printTable(const char* title, const std::vector<Row>& rows) {
  std::printf("%s\n", title);
  std::printf("%-8s %10s %9s %9s %11s %12s %7s\n", "target", "req/s", "p50 ms", "p99 ms",
              "added p99", "CPU us/req", "errors");
  for (const Row& row : rows) {
    std::printf("%-8s %10.0f %9.3f %9.3f %11.3f %12.1f %7ld\n", row.target, row.r.rps, row.r.p50,
                row.r.p99, row.r.p99 - rows.front().r.p99, row.r.cpuUsPerRequest, row.r.errors);
  }
}

nlohmann::json toJson(const WrkResult& r) {
  return {{"rps", r.rps},
          {"p50Ms", r.p50},
          {"p99Ms", r.p99},
          {"errors", r.errors},
          {"cpuUsPerRequest", r.cpuUsPerRequest}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"facade benchmark: wrk direct vs facade vs nginx, and memory per route"};
  int seconds = 5, conns = 32, threads = 2, proxyThreads = 1, routes = 1000;
  int pacedConns = 8;
  int pacedDelayMs = 2;
  app.add_option("--duration", seconds, "seconds per wrk run");
  app.add_option("--connections", conns, "wrk connections (saturated load)");
  app.add_option("--threads", threads, "wrk threads (saturated load)");
  app.add_option("--paced-connections", pacedConns, "wrk connections of the paced load (0: skip)");
  app.add_option("--paced-delay-ms", pacedDelayMs,
                 "paced load: delay between a connection's requests (wrk Lua delay())");
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

  const pid_t nginxWorker = firstChild(nginx);

  const std::string base = "http://127.0.0.1:";
  const std::string directUrl = base + std::to_string(backend.port) + "/";
  const std::string facadeUrl = (*facade)->url() + "/";
  const std::string nginxUrl = base + std::to_string(nginxPort) + "/";
  auto measure = [&](const Load& load) {
    // A 1 s warm-up of each target, then the measured run.
    std::vector<Row> rows;
    wrk(directUrl, "", load, 0, 1);
    rows.push_back({"direct", wrk(directUrl, "", load)});
    wrk(facadeUrl, "bench.apps.localhost", load, 0, 1);
    rows.push_back({"facade", wrk(facadeUrl, "bench.apps.localhost", load)});
    wrk(nginxUrl, "", load, nginxWorker, 1);
    rows.push_back({"nginx", wrk(nginxUrl, "", load, nginxWorker)});
    return rows;
  };
  const Load saturated{threads, conns, seconds, ""};
  const std::vector<Row> sat = measure(saturated);
  std::vector<Row> paced;
  if (pacedConns > 0) {
    const fs::path script = dir / "paced.lua";
    std::ofstream(script) << "function delay() return " << pacedDelayMs << " end\n";
    paced = measure(Load{1, pacedConns, seconds, script.string()});
  }
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

  std::printf("proxies with %d thread(s)/worker(s); added p99 = p99 - direct p99, same load\n",
              proxyThreads);
  const std::string satTitle = "saturated: wrk -t" + std::to_string(std::min(threads, conns)) +
                               " -c" + std::to_string(conns) + " -d" + std::to_string(seconds) +
                               "s --latency";
  printTable(satTitle.c_str(), sat);
  const double ratio = sat[2].r.rps > 0 ? sat[1].r.rps / sat[2].r.rps : 0;
  std::printf("facade/nginx req/s (saturated): %.2fx\n", ratio);
  if (!paced.empty()) {
    const std::string title = "paced: wrk -t1 -c" + std::to_string(pacedConns) + " -d" +
                              std::to_string(seconds) + "s --latency, Lua delay() " +
                              std::to_string(pacedDelayMs) + " ms";
    printTable(title.c_str(), paced);
  }
  std::printf("memory: %d routes scaled to zero: %ld KiB RSS, %.0f bytes/route\n", routes,
              after - before, bytesPerRoute);
  nlohmann::json j{{"bench", "facade"},
                   {"wrk", {{"threads", threads}, {"connections", conns}, {"seconds", seconds}}},
                   {"proxyThreads", proxyThreads},
                   {"direct", toJson(sat[0].r)},
                   {"facade", toJson(sat[1].r)},
                   {"nginx", toJson(sat[2].r)},
                   {"facadeOverNginx", ratio},
                   {"bytesPerRoute", bytesPerRoute}};
  if (!paced.empty()) {
    j["paced"] = {{"connections", pacedConns},
                  {"delayMs", pacedDelayMs},
                  {"direct", toJson(paced[0].r)},
                  {"facade", toJson(paced[1].r)},
                  {"nginx", toJson(paced[2].r)},
                  {"facadeAddedP99Ms", paced[1].r.p99 - paced[0].r.p99},
                  {"nginxAddedP99Ms", paced[2].r.p99 - paced[0].r.p99}};
  }
  std::printf("%s\n", j.dump().c_str());
  (*facade)->stop();
  (*memFacade)->stop();
  (*upstream)->stop();
  fs::remove_all(dir);
  return 0;
}
