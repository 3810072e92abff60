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
// Needs `wrk` and `nginx` on PATH (scripts/setup.sh installs both). Prints a table and one JSON
// line. See bench/RESULTS.md.
//
// A comparison is only printed when every target served: when nginx does not start, wrk is
// missing, or a measured run served no requests or answered non-2xx, the bench says which and
// exits 1 (a reference that did not run must never show up as a ratio of 0).
#include <fcntl.h>
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
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/subprocess.hpp"
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

// A run that cannot give a figure: main() catches it, lets the destructors stop nginx and
// remove the scratch directory, prints the reason and exits 1.
struct BenchFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// True when `name` is a path to an executable or an executable in PATH.
bool onPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string d; std::getline(dirs, d, ':');) {
    if (!d.empty() && ::access((d + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

bool acceptsOn(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// nginx's own words on why it failed: its stderr and its error log.
std::string nginxOutput(const fs::path& dir) {
  const std::string out = readFile(dir / "stderr") + readFile(dir / "error.log");
  return out.empty() ? "(it printed nothing)" : out;
}

double toMs(double v, const std::string& unit) {
  if (unit == "us") return v / 1000;
  if (unit == "s") return v * 1000;
  return v;
}

struct WrkResult {
  double rps = 0, p50 = 0, p99 = 0;
  long errors = 0;  // non-2xx answers + socket errors
  long non2xx = 0;
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

// One wrk run. Throws BenchFailure when wrk could not run or the target served nothing; the
// caller decides what else (non-2xx answers) disqualifies a measured run.
WrkResult wrk(const std::string& url, const std::string& hostHeader, const Load& load,
              pid_t alsoCount = 0, int seconds = 0) {
  if (seconds == 0) seconds = load.seconds;
  ProcessSpec p;
  p.argv = {"wrk", "-t" + std::to_string(std::min(load.threads, load.conns)),
            "-c" + std::to_string(load.conns), "-d" + std::to_string(seconds) + "s", "--latency"};
  if (!load.script.empty()) p.argv.insert(p.argv.end(), {"-s", load.script});
  if (!hostHeader.empty()) p.argv.insert(p.argv.end(), {"-H", "Host: " + hostHeader});
  p.argv.push_back(url);
  p.timeout = std::chrono::seconds(seconds + 30);
  const double cpuBefore = selfCpuSeconds() + pidCpuSeconds(alsoCount);
  auto ran = runProcess(p);
  const double cpu = selfCpuSeconds() + pidCpuSeconds(alsoCount) - cpuBefore;
  if (!ran.isOk()) throw BenchFailure("wrk could not run: " + ran.status().toString());
  const std::string out = ran->out + ran->err;
  if (!ran->ok()) {
    throw BenchFailure("`" + commandLine(p.argv) + "` failed (" + ran->describe() + "):\n" + out);
  }
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
    r.non2xx = std::stol(m[1]);
    r.errors += r.non2xx;
  }
  if (std::regex_search(
          out, m,
          std::regex(
              R"(Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+))"))) {
    r.errors += std::stol(m[1]) + std::stol(m[2]) + std::stol(m[3]) + std::stol(m[4]);
  }
  if (r.requests == 0 || r.rps <= 0) {
    throw BenchFailure("wrk got no answers from " + url + ":\n" + out);
  }
  return r;
}

// nginx as the reference proxy: a child process in the foreground (daemon off) on a generated
// config in `dir`. start() returns once nginx accepts connections on its port, or throws with
// nginx's own error output. The destructor stops it (QUIT, then KILL after 5 s) so no failure
// path leaves it running.
class Nginx {
 public:
  Nginx(std::string binary, fs::path dir) : binary_(std::move(binary)), dir_(std::move(dir)) {}
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;
  ~Nginx() { stop(); }

  void start(int workers, uint16_t upstreamPort) {
    if (!onPath(binary_)) {
      throw BenchFailure("nginx, the reference proxy, is not installed: '" + binary_ +
                         "' is not an executable on PATH (scripts/setup.sh installs it)");
    }
    port_ = freePort();
    writeConfig(workers, upstreamPort);
    const std::string conf = (dir_ / "nginx.conf").string(), prefix = dir_.string();
    const std::string errPath = (dir_ / "stderr").string();
    pid_ = ::fork();
    if (pid_ < 0) throw BenchFailure("fork for nginx failed");
    if (pid_ == 0) {
      const int fd = ::open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDERR_FILENO);
        ::dup2(fd, STDOUT_FILENO);
      }
      ::execlp(binary_.c_str(), binary_.c_str(), "-p", prefix.c_str(), "-c", conf.c_str(), "-g",
               "daemon off;", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Up to 10 s: a loaded machine starts it slowly, but it must answer before we measure.
    for (int i = 0; i < 200; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        const std::string how = WIFEXITED(st) ? "exit status " + std::to_string(WEXITSTATUS(st))
                                              : "signal " + std::to_string(WTERMSIG(st));
        throw BenchFailure("nginx (the reference proxy) exited at start (" + how +
                           "): " + nginxOutput(dir_));
      }
      if (acceptsOn(port_)) {
        worker_ = firstChild(pid_);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw BenchFailure("nginx (the reference proxy) did not accept on 127.0.0.1:" +
                       std::to_string(port_) + " within 10 s: " + nginxOutput(dir_));
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  uint16_t port() const { return port_; }
  pid_t worker() const { return worker_; }

 private:
  void writeConfig(int workers, uint16_t upstreamPort) const {
    std::ofstream conf(dir_ / "nginx.conf");
    conf << "worker_processes " << workers << ";\n"
         << "pid " << (dir_ / "nginx.pid").string() << ";\n"
         << "error_log " << (dir_ / "error.log").string() << " warn;\n"
         << "events { worker_connections 4096; }\n"
         << "http {\n  access_log off;\n"
         << "  client_body_temp_path " << dir_.string() << "/body;\n"
         << "  proxy_temp_path " << dir_.string() << "/proxy;\n"
         << "  fastcgi_temp_path " << dir_.string() << "/fcgi;\n"
         << "  uwsgi_temp_path " << dir_.string() << "/uwsgi;\n"
         << "  scgi_temp_path " << dir_.string() << "/scgi;\n"
         << "  upstream app { server 127.0.0.1:" << upstreamPort << "; keepalive 64; }\n"
         << "  server {\n    listen 127.0.0.1:" << port_ << ";\n"
         << "    location / {\n      proxy_pass http://app;\n      proxy_http_version 1.1;\n"
         << "      proxy_set_header Connection \"\";\n"
         << "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
         << "    }\n  }\n}\n";
  }

  static pid_t firstChild(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    pid_t child = 0;
    in >> child;
    return child;
  }

  std::string binary_;
  fs::path dir_;
  pid_t pid_ = -1;
  pid_t worker_ = 0;
  uint16_t port_ = 0;
};

// The scratch directory, removed on every way out of main.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(fs::path p) : path(std::move(p)) { fs::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

long rssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
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

// Throws BenchFailure when a target or the reference could not be measured.
int runBench(int argc, char** argv) {
  CLI::App app{"facade benchmark: wrk direct vs facade vs nginx, and memory per route"};
  int seconds = 5, conns = 32, threads = 2, proxyThreads = 1, routes = 1000;
  int pacedConns = 8;
  int pacedDelayMs = 2;
  std::string nginxBinary = "nginx";
  app.add_option("--duration", seconds, "seconds per wrk run")->check(CLI::PositiveNumber);
  app.add_option("--connections", conns, "wrk connections (saturated load)")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "wrk threads (saturated load)")->check(CLI::PositiveNumber);
  app.add_option("--paced-connections", pacedConns, "wrk connections of the paced load (0: skip)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--paced-delay-ms", pacedDelayMs,
                 "paced load: delay between a connection's requests (wrk Lua delay())");
  app.add_option("--proxy-threads", proxyThreads, "facade I/O threads = nginx workers")
      ->check(CLI::PositiveNumber);
  app.add_option("--routes", routes, "routes for the memory measurement")
      ->check(CLI::PositiveNumber);
  app.add_option("--nginx", nginxBinary, "the reference proxy's binary (name in PATH or a path)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  if (!onPath("wrk")) {
    throw BenchFailure("wrk is not installed (not on PATH; scripts/setup.sh installs it)");
  }

  // The app: a fixed 100-byte body.
  net::Router router;
  router.add("GET", "/", [](const net::HttpRequest&) {
    return net::HttpResponse::text(200, std::string(100, 'x'));
  });
  net::ServerOptions serverOptions;
  serverOptions.threads = 1;
  auto upstream = net::HttpServer::create(serverOptions, std::move(router));
  if (!upstream.isOk()) throw BenchFailure("the app: " + upstream.status().toString());
  (*upstream)->start();

  StaticBackend backend;
  backend.port = (*upstream)->port();
  provider::FacadeOptions options;
  options.threads = proxyThreads;
  auto facade = provider::Facade::create(options, backend, systemClock());
  if (!facade.isOk()) throw BenchFailure("the facade: " + facade.status().toString());
  (*facade)->start();
  provider::RouteConfig route;
  route.deployment = "bench";
  route.minReplicas = 1;
  route.maxReplicas = 1;
  if (Status st = (*facade)->addRoute(route); !st.isOk()) {
    throw BenchFailure("the facade's route: " + st.toString());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the route learns its upstream

  const ScratchDir dir(fs::temp_directory_path() / ("facade-bench-" + std::to_string(getpid())));
  Nginx nginx(nginxBinary, dir.path);
  nginx.start(proxyThreads, backend.port);

  const std::string base = "http://127.0.0.1:";
  const std::string directUrl = base + std::to_string(backend.port) + "/";
  const std::string facadeUrl = (*facade)->url() + "/";
  const std::string nginxUrl = base + std::to_string(nginx.port()) + "/";
  // A measured run must have been served: a target that answered errors gives no figure.
  auto measured = [](const char* target, WrkResult r) {
    if (r.non2xx > 0) {
      throw BenchFailure(std::string(target) + " answered " + std::to_string(r.non2xx) +
                         " non-2xx responses of " + std::to_string(r.requests));
    }
    return Row{target, r};
  };
  auto measure = [&](const Load& load) {
    // A 1 s warm-up of each target, then the measured run.
    std::vector<Row> rows;
    wrk(directUrl, "", load, 0, 1);
    rows.push_back(measured("direct", wrk(directUrl, "", load)));
    wrk(facadeUrl, "bench.apps.localhost", load, 0, 1);
    rows.push_back(measured("facade", wrk(facadeUrl, "bench.apps.localhost", load)));
    wrk(nginxUrl, "", load, nginx.worker(), 1);
    rows.push_back(measured("nginx", wrk(nginxUrl, "", load, nginx.worker())));
    return rows;
  };
  const Load saturated{threads, conns, seconds, ""};
  const std::vector<Row> sat = measure(saturated);
  std::vector<Row> paced;
  if (pacedConns > 0) {
    const fs::path script = dir.path / "paced.lua";
    std::ofstream(script) << "function delay() return " << pacedDelayMs << " end\n";
    paced = measure(Load{1, pacedConns, seconds, script.string()});
  }
  nginx.stop();

  // Memory per route: a separate facade, N routes at min 0 (no instances), with metrics.
  MetricsRegistry metrics;
  StaticBackend empty;
  provider::FacadeOptions memOptions;
  memOptions.metrics = &metrics;
  auto memFacade = provider::Facade::create(memOptions, empty, systemClock());
  if (!memFacade.isOk()) throw BenchFailure("the memory facade: " + memFacade.status().toString());
  (*memFacade)->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const long before = rssKb();
  for (int i = 0; i < routes; ++i) {
    provider::RouteConfig r;
    r.deployment = "dep-" + std::to_string(i);
    r.hostname = "app-" + std::to_string(i);
    if (Status st = (*memFacade)->addRoute(r); !st.isOk()) {
      throw BenchFailure("route " + std::to_string(i) + " of the memory run: " + st.toString());
    }
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
  // Both are > 0: wrk() and measured() refused a run that served nothing.
  const double ratio = sat[1].r.rps / sat[2].r.rps;
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
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return runBench(argc, argv);
  } catch (const BenchFailure& e) {
    std::fprintf(stderr, "facade_bench: FAILED, no figures: %s\n", e.what());
    return 1;
  }
}
