// Facade implementation (see facade.hpp).
//
// Threads and ownership:
//  - N I/O threads, each running its own io_context. A downstream connection lives on one of
//    them (round-robin at accept) together with every upstream connection it uses, so a
//    connection's coroutine and the upstream connection pool of its thread need no strand or
//    lock. Pools are per thread and per upstream ("ip:port"), bounded.
//  - Per-deployment state (route config, ready upstreams with their in-flight counts, the
//    cold-start queue, scaling decisions, the 402 flag) sits behind the deployment's mutex,
//    held only for short non-blocking sections. Byte counters are atomics.
//  - A small worker pool makes every FacadeBackend call (scaleTo blocks while runc works). One
//    scaling operation runs at a time per deployment (`opRunning`); later wishes update
//    `desired` and the running operation picks them up.
//  - Idle and cold-start timers run on the injected Clock; their callbacks only take the
//    deployment's lock and post work to the worker pool.
//
// A waiting request (cold start) sleeps on a steady_timer of its own I/O thread; whoever
// decides its fate sets the waiter's state under the deployment lock and posts a cancel of that
// timer to the waiter's io_context.
#include <utility>  // Boost 1.74 + g++ 12: before Asio's coroutine headers

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "net/beast_aliases.hpp"
#include "net/http.hpp"
#include "provider/facade/facade.hpp"
#include "provider/facade/routing.hpp"

namespace mercato::provider {
namespace {

using namespace mercato::net::detail;  // NOLINT: the shared Asio/Beast aliases
using error_code = boost::system::error_code;

constexpr auto kAwait = asio::use_awaitable;
constexpr size_t kPoolPerUpstream = 64;  // idle upstream connections per I/O thread
constexpr size_t kRelayChunk = 64 << 10;
constexpr auto kPollInterval = std::chrono::milliseconds(2);
constexpr auto kConnectTimeout = std::chrono::seconds(5);

using RequestParser = http::request_parser<http::buffer_body>;
using ResponseParser = http::response_parser<http::buffer_body>;

// ---------------------------------------------------------------------------------------------
// Per-deployment state.

struct UpstreamSlot {
  Upstream address;
  std::string key;  // "ip:port"
  int inFlight = 0;
};

struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  enum class State { kWaiting, kReady, kTimedOut, kFailed, kRemoved };
  asio::steady_timer timer;       // touched only on its own I/O thread
  State state = State::kWaiting;  // under the deployment's mutex
  std::string message;
  TimerId clockTimer = 0;
};

struct Deployment {
  std::mutex mu;  // guards everything up to the atomics
  RouteConfig config;
  std::vector<UpstreamSlot> ready;
  std::deque<std::shared_ptr<Waiter>> queue;
  std::optional<std::string> paymentRequired;
  int desired = 0;   // replicas we want
  int applied = -1;  // replicas the backend last accepted (-1: unknown)
  bool opRunning = false;
  bool refreshWanted = false;
  bool removed = false;
  int inFlight = 0;
  bool idleArmed = false;
  TimerId idleTimer = 0;
  SteadyPoint lastFinish{};
  int64_t lastRequestMs = 0;

  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> egress{0};
  std::atomic<int64_t> ingress{0};

  Counter* requestsMetric = nullptr;
  Counter* coldStartsMetric = nullptr;
  Gauge* queueMetric = nullptr;
  Histogram* latencyMetric = nullptr;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// Comma-separated tokens of every `name` field, lower-cased.
std::vector<std::string> tokens(const http::fields& f, http::field name) {
  std::vector<std::string> out;
  const auto range = f.equal_range(name);
  for (auto field = range.first; field != range.second; ++field) {
    std::string_view v = sv(field->value());
    while (!v.empty()) {
      const size_t comma = v.find(',');
      std::string t = lower(trim(v.substr(0, comma)));
      if (!t.empty()) out.push_back(std::move(t));
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return out;
}

// RFC 9110 7.6.1: Connection and the fields it names, plus the classic hop-by-hop set.
// Transfer-Encoding stays: Beast frames the body from it and re-frames it on output.
void stripHopByHop(http::fields& f, bool keepUpgrade) {
  for (const std::string& name : tokens(f, http::field::connection)) {
    if (name == "close" || name == "keep-alive" || name == "upgrade") continue;
    if (name == "transfer-encoding" || name == "content-length" || name == "host") continue;
    f.erase(name);
  }
  f.erase(http::field::connection);
  f.erase(http::field::keep_alive);
  f.erase(http::field::proxy_connection);
  f.erase(http::field::proxy_authenticate);
  f.erase(http::field::proxy_authorization);
  f.erase(http::field::te);
  f.erase(http::field::trailer);
  if (!keepUpgrade) f.erase(http::field::upgrade);
}

bool isIdempotent(http::verb v) {
  switch (v) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::trace:
      return true;
    default:
      return false;
  }
}

// Body relay buffers live on the heap for the duration of one body only (not in the
// coroutine frame), sized to the body when it is known to be small.
size_t relayChunkSize(boost::optional<uint64_t> contentLength) {
  if (contentLength && *contentLength < kRelayChunk) {
    return std::max<size_t>(static_cast<size_t>(*contentLength), 1);
  }
  return kRelayChunk;
}

// A failure after which nothing was received: the signature of a pooled connection the
// upstream closed while it sat idle.
bool isStaleConnectionError(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == http::error::partial_message;
}

// ---------------------------------------------------------------------------------------------

struct IoThread {
  asio::io_context ioc{1};
  // Idle upstream connections, by "ip:port". Only touched on this thread. Declared after ioc
  // so that it is destroyed first.
  std::unordered_map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> pool;
  std::thread thread;
};

class Core;

// Holds one in-flight slot of a deployment (and of one of its upstreams) until destroyed.
struct Lease {
  Core* core = nullptr;
  std::shared_ptr<Deployment> dep;
  std::string key;
  Upstream address;
  SteadyClock::time_point started;
  Lease() = default;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(const FacadeOptions& options, FacadeBackend& backend, Clock& clock)
      : options_(options), backend_(backend), clock_(clock) {}
  ~Core();

  Status init();
  void start();
  void stop();
  uint16_t port() const { return port_; }
  std::string url() const { return url_; }

  Status addRoute(const RouteConfig& route);
  void removeRoute(const std::string& deployment);
  void setPaymentRequired(const std::string& deployment, std::optional<std::string> reason);
  TrafficCounters counters(const std::string& deployment);
  void restoreCounters(const std::string& deployment, int64_t requests, int64_t egressBytes);

  void release(Lease& lease);

 private:
  // Downstream side.
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> session(IoThread& io, tcp::socket socket);
  asio::awaitable<bool> handle(IoThread& io, beast::tcp_stream& client, beast::flat_buffer& buffer,
                               RequestParser& parser, const std::string& remoteIp,
                               size_t headerBytes);
  asio::awaitable<bool> proxy(IoThread& io, beast::tcp_stream& client, beast::flat_buffer& buffer,
                              RequestParser& parser, const std::string& remoteIp,
                              size_t headerBytes, std::shared_ptr<Deployment> dep,
                              std::string target, std::string prefix);
  asio::awaitable<bool> sendError(beast::tcp_stream& client, const RequestParser& parser,
                                  int status, std::string_view code, std::string_view message,
                                  std::string_view location = {});
  asio::awaitable<void> tunnel(beast::tcp_stream& client, beast::flat_buffer& clientBuf,
                               beast::tcp_stream& upstream, beast::flat_buffer& upstreamBuf,
                               Deployment& dep);

  // Deployment state.
  std::shared_ptr<Deployment> findByHost(const std::string& key);
  std::shared_ptr<Deployment> findById(const std::string& id);
  void setReadyLocked(Deployment& dep, const std::vector<Upstream>& ups);
  void wakeLocked(Deployment& dep, Waiter::State state, const std::string& message);
  void startOpLocked(const std::shared_ptr<Deployment>& dep);
  void runOps(const std::shared_ptr<Deployment>& dep);
  void armIdleLocked(const std::shared_ptr<Deployment>& dep, Millis delay);
  void onIdleTimer(const std::shared_ptr<Deployment>& dep);
  void onColdStartTimeout(const std::shared_ptr<Deployment>& dep,
                          const std::shared_ptr<Waiter>& waiter);

  // Worker pool for FacadeBackend calls.
  void post(std::function<void()> task);
  void workerLoop();

  FacadeOptions options_;
  FacadeBackend& backend_;
  Clock& clock_;
  std::vector<std::unique_ptr<IoThread>> io_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  size_t nextIo_ = 0;
  uint16_t port_ = 0;
  std::string url_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
  std::mutex lifecycleMu_;

  std::shared_mutex routesMu_;
  std::unordered_map<std::string, std::shared_ptr<Deployment>> byId_;
  std::unordered_map<std::string, std::shared_ptr<Deployment>> byHost_;
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> pendingRestore_;

  std::mutex workMu_;
  std::condition_variable workCv_;
  std::deque<std::function<void()>> work_;
  std::vector<std::thread> workers_;
  bool workStop_ = false;
};

Lease::~Lease() {
  if (core) core->release(*this);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle.

Status Core::init() {
  if (options_.threads < 1) return invalidArgument("facade threads must be at least 1");
  if (options_.queueLimit < 1) return invalidArgument("facade queueLimit must be at least 1");
  const std::string& listen = options_.listen;
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return invalidArgument("facade listen address '" + listen + "' must be host:port");
  }
  std::string host = listen.substr(0, colon);
  const std::string portText = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  for (int i = 0; i < options_.threads; ++i) io_.push_back(std::make_unique<IoThread>());
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  char* endp = nullptr;
  const long portNumber = std::strtol(portText.c_str(), &endp, 10);
  if (ec || portText.empty() || *endp != '\0' || portNumber < 0 || portNumber > 65535) {
    return invalidArgument("facade listen address '" + listen +
                           "': expected an IP address and a port 0..65535");
  }
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(portNumber));
  acceptor_ = std::make_unique<tcp::acceptor>(io_[0]->ioc);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("facade cannot listen on " + listen + ": " + ec.message());
  const tcp::endpoint local = acceptor_->local_endpoint(ec);
  if (ec) return unavailable("facade cannot listen on " + listen + ": " + ec.message());
  port_ = local.port();
  std::string shown = local.address().is_unspecified() ? "127.0.0.1" : local.address().to_string();
  if (local.address().is_v6() && !local.address().is_unspecified()) shown = "[" + shown + "]";
  url_ = "http://" + shown + ":" + std::to_string(port_);
  return Status::ok();
}

void Core::start() {
  std::lock_guard lock(lifecycleMu_);
  if (started_ || stopped_) return;
  started_ = true;
  asio::co_spawn(io_[0]->ioc, acceptLoop(), asio::detached);
  for (auto& io : io_) {
    IoThread* t = io.get();
    t->thread = std::thread([t] {
      auto guard = asio::make_work_guard(t->ioc);
      for (;;) {
        try {
          t->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("facade: I/O thread caught: {}", e.what());
        }
      }
    });
  }
  constexpr int kWorkers = 4;
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { workerLoop(); });
}

void Core::stop() {
  {
    std::lock_guard lock(lifecycleMu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_ = true;
  for (auto& io : io_) io->ioc.stop();
  for (auto& io : io_) {
    if (io->thread.joinable()) io->thread.join();
  }
  {
    std::lock_guard lock(workMu_);
    workStop_ = true;
  }
  workCv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  std::unique_lock lock(routesMu_);
  for (auto& [id, dep] : byId_) {
    std::lock_guard depLock(dep->mu);
    if (dep->idleArmed) clock_.cancel(dep->idleTimer);
    dep->idleArmed = false;
    for (auto& w : dep->queue) clock_.cancel(w->clockTimer);
  }
}

Core::~Core() {
  stop();
  // Coroutine frames (and their Leases) die with the io_contexts, while the rest still exists.
  acceptor_.reset();
  io_.clear();
}

void Core::post(std::function<void()> task) {
  {
    std::lock_guard lock(workMu_);
    if (workStop_) return;
    work_.push_back(std::move(task));
  }
  workCv_.notify_one();
}

void Core::workerLoop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(workMu_);
      workCv_.wait(lock, [&] { return workStop_ || !work_.empty(); });
      if (workStop_) return;
      task = std::move(work_.front());
      work_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("facade: backend task threw: {}", e.what());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Routes and counters.

Status Core::addRoute(const RouteConfig& route) {
  if (route.deployment.empty() || route.deployment.find_first_of("/?# ") != std::string::npos) {
    return invalidArgument("route deployment id '" + route.deployment +
                           "' must be non-empty without '/', '?', '#' or spaces");
  }
  if (route.minReplicas < 0 || route.maxReplicas < std::max(route.minReplicas, 1)) {
    return invalidArgument("route " + route.deployment +
                           ": expected 0 <= minReplicas <= maxReplicas and maxReplicas >= 1");
  }
  if (route.targetConcurrency < 1) {
    return invalidArgument("route " + route.deployment + ": targetConcurrency must be >= 1");
  }
  if (route.idleTimeoutMs < 0) {
    return invalidArgument("route " + route.deployment + ": idleTimeoutMs must be >= 0");
  }
  std::vector<std::string> keys{lower(route.deployment)};
  if (!route.hostname.empty()) keys.push_back(lower(route.hostname));

  std::unique_lock lock(routesMu_);
  for (const std::string& key : keys) {
    auto it = byHost_.find(key);
    if (it != byHost_.end() && it->second->config.deployment != route.deployment) {
      return alreadyExists("hostname '" + key + "' is already routed to deployment " +
                           it->second->config.deployment);
    }
  }
  std::shared_ptr<Deployment> dep;
  if (auto it = byId_.find(route.deployment); it != byId_.end()) {
    dep = it->second;
    for (auto h = byHost_.begin(); h != byHost_.end();) {
      h = h->second == dep ? byHost_.erase(h) : std::next(h);
    }
    std::lock_guard depLock(dep->mu);
    dep->config = route;
  } else {
    dep = std::make_shared<Deployment>();
    dep->config = route;
    // The provider deploys `min` instances with the route; we only need to find them.
    dep->desired = dep->applied = route.minReplicas;
    if (auto p = pendingRestore_.find(route.deployment); p != pendingRestore_.end()) {
      dep->requests = p->second.first;
      dep->egress = p->second.second;
      pendingRestore_.erase(p);
    }
    if (options_.metrics) {
      const std::string label = "{deployment=\"" + route.deployment + "\"}";
      auto* m = options_.metrics;
      dep->requestsMetric = m->counter("mercato_facade_requests_total" + label,
                                       "Requests answered by a deployment's instances");
      dep->coldStartsMetric = m->counter("mercato_facade_cold_starts_total" + label,
                                         "Scale-ups from zero triggered by a request");
      dep->queueMetric = m->gauge("mercato_facade_queue_length" + label,
                                  "Requests waiting for an instance to start");
      dep->latencyMetric = m->histogram("mercato_facade_request_duration_seconds" + label,
                                        "Time from a request's header to the end of its response");
    }
    byId_[route.deployment] = dep;
    // Instances may already run (min > 0, or a restart): learn them.
    std::lock_guard depLock(dep->mu);
    dep->refreshWanted = true;
    startOpLocked(dep);
  }
  for (const std::string& key : keys) byHost_[key] = dep;
  return Status::ok();
}

void Core::removeRoute(const std::string& deployment) {
  std::shared_ptr<Deployment> dep;
  {
    std::unique_lock lock(routesMu_);
    auto it = byId_.find(deployment);
    if (it == byId_.end()) return;
    dep = it->second;
    byId_.erase(it);
    for (auto h = byHost_.begin(); h != byHost_.end();) {
      h = h->second == dep ? byHost_.erase(h) : std::next(h);
    }
  }
  std::lock_guard lock(dep->mu);
  dep->removed = true;
  if (dep->idleArmed) clock_.cancel(dep->idleTimer);
  dep->idleArmed = false;
  wakeLocked(*dep, Waiter::State::kRemoved, "deployment " + deployment + " was removed");
}

void Core::setPaymentRequired(const std::string& deployment, std::optional<std::string> reason) {
  auto dep = findById(deployment);
  if (!dep) return;
  std::lock_guard lock(dep->mu);
  if (reason) {
    // The provider stops the app while it is unpaid: forget its instances, so the first request
    // after a top-up starts one (the cold path) instead of dialling a stale address.
    dep->ready.clear();
    dep->desired = 0;
    dep->applied = 0;  // the provider scaled it to zero; the next start must reach the backend
  }
  dep->paymentRequired = std::move(reason);
}

TrafficCounters Core::counters(const std::string& deployment) {
  TrafficCounters out;
  auto dep = findById(deployment);
  if (!dep) return out;
  std::lock_guard lock(dep->mu);
  out.requests = dep->requests;
  out.egressBytes = dep->egress;
  out.ingressBytes = dep->ingress;
  out.inFlight = dep->inFlight;
  out.lastRequestMs = dep->lastRequestMs;
  return out;
}

void Core::restoreCounters(const std::string& deployment, int64_t requests, int64_t egressBytes) {
  auto dep = findById(deployment);
  if (!dep) {  // the route comes later: apply it then
    std::unique_lock lock(routesMu_);
    pendingRestore_[deployment] = {requests, egressBytes};
    return;
  }
  dep->requests += requests;
  dep->egress += egressBytes;
}

std::shared_ptr<Deployment> Core::findByHost(const std::string& key) {
  std::shared_lock lock(routesMu_);
  auto it = byHost_.find(key);
  return it == byHost_.end() ? nullptr : it->second;
}

std::shared_ptr<Deployment> Core::findById(const std::string& id) {
  std::shared_lock lock(routesMu_);
  auto it = byId_.find(id);
  return it == byId_.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------------------------------------
// Scaling.

void Core::wakeLocked(Deployment& dep, Waiter::State state, const std::string& message) {
  for (auto& w : dep.queue) {
    w->state = state;
    w->message = message;
    if (w->clockTimer) clock_.cancel(w->clockTimer);
    asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
  }
  dep.queue.clear();
  if (dep.queueMetric) dep.queueMetric->set(0);
}

void Core::setReadyLocked(Deployment& dep, const std::vector<Upstream>& ups) {
  std::vector<UpstreamSlot> next;
  next.reserve(ups.size());
  for (const Upstream& u : ups) {
    UpstreamSlot slot{u, u.ip + ":" + std::to_string(u.port), 0};
    for (const UpstreamSlot& old : dep.ready) {
      if (old.key == slot.key) slot.inFlight = old.inFlight;
    }
    next.push_back(std::move(slot));
  }
  dep.ready = std::move(next);
  if (!dep.ready.empty() && !dep.queue.empty()) wakeLocked(dep, Waiter::State::kReady, "");
}

void Core::startOpLocked(const std::shared_ptr<Deployment>& dep) {
  if (dep->opRunning || stopping_) return;
  dep->opRunning = true;
  post([this, dep] { runOps(dep); });
}

// Runs on a worker: applies `desired` until it stops changing, then watches readyUpstreams
// until enough instances are ready (releasing waiters as soon as one is).
void Core::runOps(const std::shared_ptr<Deployment>& dep) {
  const std::string id = dep->config.deployment;
  for (;;) {
    int target;
    bool scale;
    {
      std::lock_guard lock(dep->mu);
      if (dep->removed || stopping_) {
        dep->opRunning = false;
        return;
      }
      // Load that built up while the previous operation ran (a burst released from the
      // cold-start queue arrives all at once).
      const int ready = static_cast<int>(dep->ready.size());
      if (ready > 0 && dep->inFlight > dep->config.targetConcurrency * ready &&
          dep->desired < dep->config.maxReplicas) {
        dep->desired = std::max(dep->desired, ready) + 1;
      }
      target = dep->desired;
      scale = target != dep->applied;
      if (!scale && !dep->refreshWanted) {
        dep->opRunning = false;
        return;
      }
      dep->refreshWanted = false;
    }
    if (scale) {
      spdlog::info("facade: scaling {} to {}", id, target);
      const Status st = backend_.scaleTo(id, target);
      std::lock_guard lock(dep->mu);
      dep->applied = target;  // on failure too: retrying in a loop would not help
      if (!st.isOk()) {
        spdlog::error("facade: scaling {} to {} failed: {}", id, target, st.toString());
        wakeLocked(*dep, Waiter::State::kFailed,
                   "deployment " + id + " could not be started: " + st.message());
      }
    }
    const auto deadline =
        SteadyClock::now() + std::chrono::milliseconds(options_.coldStartTimeoutMs);
    for (;;) {
      std::vector<Upstream> ups = backend_.readyUpstreams(id);
      std::lock_guard lock(dep->mu);
      if (dep->removed || stopping_) break;
      if (dep->desired == 0 && target == 0) {
        dep->ready.clear();
        break;
      }
      setReadyLocked(*dep, ups);
      const bool enough = static_cast<int>(ups.size()) >= target && dep->queue.empty();
      if (enough || dep->desired != target || SteadyClock::now() >= deadline) break;
      if (dep->queue.empty() && !scale) break;  // a refresh with nobody waiting: one look
      // Sleep outside the lock.
      dep->mu.unlock();
      std::this_thread::sleep_for(kPollInterval);
      dep->mu.lock();
    }
  }
}

void Core::armIdleLocked(const std::shared_ptr<Deployment>& dep, Millis delay) {
  if (dep->idleArmed || stopping_) return;
  dep->idleArmed = true;
  std::weak_ptr<Core> weak = weak_from_this();
  dep->idleTimer = clock_.callAfter(delay, [weak, dep] {
    if (auto core = weak.lock()) core->onIdleTimer(dep);
  });
}

void Core::onIdleTimer(const std::shared_ptr<Deployment>& dep) {
  std::lock_guard lock(dep->mu);
  dep->idleArmed = false;
  if (dep->removed || dep->inFlight > 0 || !dep->queue.empty()) return;
  if (dep->desired <= dep->config.minReplicas) return;
  const Millis idle = std::chrono::duration_cast<Millis>(clock_.steadyNow() - dep->lastFinish);
  const Millis limit(dep->config.idleTimeoutMs);
  if (idle < limit) {
    armIdleLocked(dep, limit - idle);
    return;
  }
  spdlog::info("facade: {} idle for {} ms, scaling to {}", dep->config.deployment, idle.count(),
               dep->config.minReplicas);
  dep->desired = dep->config.minReplicas;
  if (dep->desired == 0) dep->ready.clear();
  startOpLocked(dep);
}

void Core::onColdStartTimeout(const std::shared_ptr<Deployment>& dep,
                              const std::shared_ptr<Waiter>& waiter) {
  std::lock_guard lock(dep->mu);
  if (waiter->state != Waiter::State::kWaiting) return;
  auto it = std::find(dep->queue.begin(), dep->queue.end(), waiter);
  if (it != dep->queue.end()) dep->queue.erase(it);
  if (dep->queueMetric) dep->queueMetric->set(static_cast<int64_t>(dep->queue.size()));
  waiter->state = Waiter::State::kTimedOut;
  asio::post(waiter->timer.get_executor(), [waiter] { waiter->timer.cancel(); });
}

void Core::release(Lease& lease) {
  auto& dep = lease.dep;
  if (dep->latencyMetric) {
    dep->latencyMetric->observe(
        std::chrono::duration<double>(SteadyClock::now() - lease.started).count());
  }
  std::lock_guard lock(dep->mu);
  --dep->inFlight;
  for (UpstreamSlot& slot : dep->ready) {
    if (slot.key == lease.key) --slot.inFlight;
  }
  if (dep->inFlight == 0) {
    dep->lastFinish = clock_.steadyNow();
    if (dep->desired > dep->config.minReplicas) {
      armIdleLocked(dep, Millis(dep->config.idleTimeoutMs));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Downstream connections.

asio::awaitable<void> Core::acceptLoop() {
  asio::steady_timer backoff(acceptor_->get_executor());
  for (;;) {
    error_code ec;
    IoThread& io = *io_[nextIo_++ % io_.size()];
    tcp::socket socket = co_await acceptor_->async_accept(io.ioc, asio::redirect_error(kAwait, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open() || stopping_) co_return;
      spdlog::warn("facade: accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(kAwait, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(io.ioc, session(io, std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("facade: connection failed: {}", x.what());
      }
    });
  }
}

asio::awaitable<void> Core::session(IoThread& io, tcp::socket socket) {
  error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) co_return;
  const std::string remoteIp = peer.address().to_string();
  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    if (buffer.size() == 0) {  // between requests: the idle timeout applies
      client.expires_after(std::chrono::milliseconds(options_.clientIdleTimeoutMs));
      const size_t n =
          co_await client.async_read_some(buffer.prepare(4096), asio::redirect_error(kAwait, ec));
      if (ec) break;
      buffer.commit(n);
    }
    RequestParser parser;
    parser.header_limit(static_cast<uint32_t>(options_.maxHeaderBytes));
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    client.expires_after(std::chrono::milliseconds(options_.headerTimeoutMs));
    const size_t headerBytes =
        co_await http::async_read_header(client, buffer, parser, asio::redirect_error(kAwait, ec));
    if (ec) {
      if (ec == http::error::header_limit) {
        co_await sendError(client, parser, 431, codeName(Code::kTooLarge),
                           "request header exceeds the limit of " +
                               std::to_string(options_.maxHeaderBytes) + " bytes");
      } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message &&
                 ec != http::error::need_more) {
        co_await sendError(client, parser, 400, codeName(Code::kInvalidArgument),
                           "malformed HTTP request: " + ec.message());
      }
      break;
    }
    size_t fields = 0;
    for (auto it = parser.get().begin(); it != parser.get().end(); ++it) ++fields;
    if (fields > options_.maxHeaderCount) {
      co_await sendError(client, parser, 431, codeName(Code::kTooLarge),
                         "request has " + std::to_string(fields) + " header fields, the limit is " +
                             std::to_string(options_.maxHeaderCount));
      break;
    }
    const bool keep = co_await handle(io, client, buffer, parser, remoteIp, headerBytes);
    if (!keep) break;
  }
  client.socket().shutdown(tcp::socket::shutdown_both, ec);
  client.close();
}

asio::awaitable<bool> Core::sendError(beast::tcp_stream& client, const RequestParser& parser,
                                      int status, std::string_view code, std::string_view message,
                                      std::string_view location) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  if (!location.empty()) res.set(http::field::location, std::string(location));
  res.body() = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  // An unread request body would desynchronize the connection: close it instead.
  const bool keep = parser.is_header_done() && parser.is_done() && parser.get().keep_alive();
  res.keep_alive(keep);
  res.prepare_payload();
  client.expires_after(std::chrono::milliseconds(options_.headerTimeoutMs));
  error_code ec;
  co_await http::async_write(client, res, asio::redirect_error(kAwait, ec));
  co_return keep && !ec;
}

asio::awaitable<bool> Core::handle(IoThread& io, beast::tcp_stream& client,
                                   beast::flat_buffer& buffer, RequestParser& parser,
                                   const std::string& remoteIp, size_t headerBytes) {
  auto& req = parser.get();
  const std::string_view target = sv(req.target());
  if (target.empty() || target.front() != '/') {
    co_return co_await sendError(client, parser, 400, codeName(Code::kInvalidArgument),
                                 "request target must be an absolute path");
  }
  const std::string hostKey = facade_routing::hostKey(sv(req[http::field::host]), options_.domain);
  std::shared_ptr<Deployment> dep = hostKey.empty() ? nullptr : findByHost(hostKey);
  std::string upstreamTarget(target);
  std::string prefix;
  if (!dep) {
    facade_routing::PathRoute route = facade_routing::parsePathRoute(target);
    if (!route.deployment.empty()) dep = findById(route.deployment);
    if (dep && route.redirect) {
      co_return co_await sendError(client, parser, 308, "redirect",
                                   "the deployment's root is " + *route.redirect, *route.redirect);
    }
    if (dep) {
      upstreamTarget = std::move(route.target);
      prefix = "/d/" + route.deployment;
    }
  }
  if (!dep) {
    co_return co_await sendError(client, parser, 404, codeName(Code::kNotFound),
                                 "no deployment is routed at host '" +
                                     std::string(sv(req[http::field::host])) + "' or path " +
                                     std::string(target.substr(0, 200)));
  }
  std::optional<std::string> unpaid;
  {
    std::lock_guard lock(dep->mu);
    unpaid = dep->paymentRequired;
  }
  if (unpaid) {
    co_return co_await sendError(client, parser, 402, codeName(Code::kPaymentRequired), *unpaid);
  }
  co_return co_await proxy(io, client, buffer, parser, remoteIp, headerBytes, std::move(dep),
                           std::move(upstreamTarget), std::move(prefix));
}

asio::awaitable<bool> Core::proxy(IoThread& io, beast::tcp_stream& client,
                                  beast::flat_buffer& buffer, RequestParser& parser,
                                  const std::string& remoteIp, size_t headerBytes,
                                  std::shared_ptr<Deployment> dep, std::string target,
                                  std::string prefix) {
  error_code ec;
  auto& req = parser.get();
  const auto started = SteadyClock::now();

  // 1. An upstream: the least loaded ready one, or wait in the cold-start queue.
  Lease lease;
  std::shared_ptr<Waiter> waiter;
  for (;;) {
    enum { kPicked, kWait, kFull, kGone } outcome;
    {
      std::lock_guard lock(dep->mu);
      if (dep->removed) {
        outcome = kGone;
      } else if (!dep->ready.empty()) {
        UpstreamSlot* best = &dep->ready.front();
        for (UpstreamSlot& slot : dep->ready) {
          if (slot.inFlight < best->inFlight) best = &slot;
        }
        ++best->inFlight;
        ++dep->inFlight;
        dep->lastRequestMs = clock_.nowMillis();
        lease.core = this;
        lease.dep = dep;
        lease.key = best->key;
        lease.address = best->address;
        lease.started = started;
        outcome = kPicked;
        const int ready = static_cast<int>(dep->ready.size());
        if (dep->inFlight > dep->config.targetConcurrency * ready &&
            dep->desired < dep->config.maxReplicas && !dep->opRunning) {
          dep->desired = std::max(dep->desired, ready) + 1;
          startOpLocked(dep);
        }
      } else if (dep->queue.size() >= options_.queueLimit) {
        outcome = kFull;
      } else {
        waiter = std::make_shared<Waiter>(client.get_executor());
        dep->queue.push_back(waiter);
        if (dep->queueMetric) dep->queueMetric->set(static_cast<int64_t>(dep->queue.size()));
        std::weak_ptr<Core> weak = weak_from_this();
        waiter->clockTimer = clock_.callAfter(Millis(options_.coldStartTimeoutMs),
                                              [weak, dep, w = std::weak_ptr<Waiter>(waiter)] {
                                                auto core = weak.lock();
                                                auto waiter = w.lock();
                                                if (core && waiter)
                                                  core->onColdStartTimeout(dep, waiter);
                                              });
        if (dep->desired < std::max(dep->config.minReplicas, 1)) {
          dep->desired = std::max(dep->config.minReplicas, 1);
          if (dep->coldStartsMetric) dep->coldStartsMetric->inc();
        }
        dep->refreshWanted = true;
        startOpLocked(dep);
        outcome = kWait;
      }
    }
    if (outcome == kPicked) break;
    if (outcome == kGone) {
      co_return co_await sendError(client, parser, 404, codeName(Code::kNotFound),
                                   "the deployment was removed");
    }
    if (outcome == kFull) {
      co_return co_await sendError(client, parser, 503, codeName(Code::kUnavailable),
                                   "the app is starting and its queue is full (" +
                                       std::to_string(options_.queueLimit) +
                                       " waiting requests); retry shortly");
    }
    Waiter::State state;
    std::string message;
    for (;;) {
      {
        std::lock_guard lock(dep->mu);
        state = waiter->state;
        message = waiter->message;
      }
      if (state != Waiter::State::kWaiting) break;
      waiter->timer.expires_at(asio::steady_timer::time_point::max());
      co_await waiter->timer.async_wait(asio::redirect_error(kAwait, ec));
    }
    clock_.cancel(waiter->clockTimer);
    waiter.reset();
    if (state == Waiter::State::kTimedOut) {
      co_return co_await sendError(
          client, parser, 503, codeName(Code::kUnavailable),
          "the app did not start within " + std::to_string(options_.coldStartTimeoutMs) + " ms");
    }
    if (state == Waiter::State::kFailed) {
      co_return co_await sendError(client, parser, 503, codeName(Code::kUnavailable), message);
    }
    if (state == Waiter::State::kRemoved) {
      co_return co_await sendError(client, parser, 404, codeName(Code::kNotFound), message);
    }
  }
  dep->ingress += static_cast<int64_t>(headerBytes);

  // 2. The upstream request header.
  const bool clientKeepAlive = req.keep_alive();
  const unsigned clientVersion = req.version();
  const bool upgrade = req.count(http::field::upgrade) > 0 && [&] {
    for (const auto& t : tokens(req, http::field::connection)) {
      if (t == "upgrade") return true;
    }
    return false;
  }();
  const bool expectContinue = beast::iequals(req[http::field::expect], "100-continue");
  const bool idempotent = isIdempotent(req.method());
  const bool isHead = req.method() == http::verb::head;
  const std::string originalHost(sv(req[http::field::host]));
  stripHopByHop(req, upgrade);
  req.erase(http::field::expect);
  {
    std::string xff(sv(req["X-Forwarded-For"]));
    req.set("X-Forwarded-For", xff.empty() ? remoteIp : xff + ", " + remoteIp);
  }
  if (!originalHost.empty()) req.set("X-Forwarded-Host", originalHost);
  req.set("X-Forwarded-Proto", "http");
  if (!prefix.empty()) req.set("X-Forwarded-Prefix", prefix);
  req.target(target);
  req.version(11);
  if (upgrade) req.set(http::field::connection, "Upgrade");

  // 3. Send it (retrying once on a stale pooled connection), then read the response header.
  std::unique_ptr<beast::tcp_stream> conn;
  beast::flat_buffer upBuf;
  std::optional<ResponseParser> rp;
  bool bodyStarted = false;
  const auto upstreamTimeout = std::chrono::milliseconds(options_.upstreamTimeoutMs);
  for (int attempt = 0;; ++attempt) {
    bool pooled = false;
    if (auto it = io.pool.find(lease.key); it != io.pool.end() && !it->second.empty()) {
      conn = std::move(it->second.back());
      it->second.pop_back();
      pooled = true;
    } else {
      conn = std::make_unique<beast::tcp_stream>(io.ioc);
      const auto address = asio::ip::make_address(lease.address.ip, ec);
      if (!ec) {
        conn->expires_after(kConnectTimeout);
        co_await conn->async_connect(tcp::endpoint(address, lease.address.port),
                                     asio::redirect_error(kAwait, ec));
      }
      if (ec) {
        spdlog::warn("facade: {}: cannot connect to {}: {}", dep->config.deployment, lease.key,
                     ec.message());
        {
          std::lock_guard lock(dep->mu);
          dep->refreshWanted = true;  // the instance may be gone: look again
          startOpLocked(dep);
        }
        co_return co_await sendError(client, parser, 502, "bad_gateway",
                                     "cannot connect to the app's instance: " + ec.message());
      }
      conn->socket().set_option(tcp::no_delay(true), ec);
    }
    bool writeFailed = false;
    http::request_serializer<http::buffer_body> sr{req};
    conn->expires_after(upstreamTimeout);
    if (parser.is_done()) {  // no body: the whole request in one write
      req.body().data = nullptr;
      req.body().size = 0;
      req.body().more = false;
      co_await http::async_write(*conn, sr, asio::redirect_error(kAwait, ec));
      if (ec == http::error::need_buffer) ec = {};
    } else {
      co_await http::async_write_header(*conn, sr, asio::redirect_error(kAwait, ec));
    }
    if (ec) writeFailed = true;
    if (!ec) {
      if (!parser.is_done()) {
        bodyStarted = true;
        if (expectContinue && clientVersion >= 11) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          client.expires_after(upstreamTimeout);
          co_await asio::async_write(client, asio::buffer(kContinue),
                                     asio::redirect_error(kAwait, ec));
          if (ec) co_return false;
        }
        const size_t chunkSize = relayChunkSize(parser.content_length());
        std::unique_ptr<char[]> chunk(new char[chunkSize]);
        do {
          if (!parser.is_done()) {
            req.body().data = chunk.get();
            req.body().size = chunkSize;
            client.expires_after(upstreamTimeout);
            const size_t n =
                co_await http::async_read(client, buffer, parser, asio::redirect_error(kAwait, ec));
            if (ec == http::error::need_buffer) ec = {};
            if (ec) co_return false;  // the client went away or sent a broken body
            dep->ingress += static_cast<int64_t>(n);
            req.body().size = chunkSize - req.body().size;
            req.body().data = chunk.get();
            req.body().more = !parser.is_done();
          } else {
            req.body().data = nullptr;
            req.body().size = 0;
            req.body().more = false;
          }
          conn->expires_after(upstreamTimeout);
          co_await http::async_write(*conn, sr, asio::redirect_error(kAwait, ec));
          if (ec == http::error::need_buffer) ec = {};
          if (ec) break;
        } while (!parser.is_done() || !sr.is_done());
        if (ec) writeFailed = true;
      }
    }
    if (!ec) {
      rp.emplace();
      rp->body_limit(std::numeric_limits<uint64_t>::max());
      rp->header_limit(64 << 10);
      if (isHead) rp->skip(true);
      conn->expires_after(upstreamTimeout);
      co_await http::async_read_header(*conn, upBuf, *rp, asio::redirect_error(kAwait, ec));
      // Interim responses (100 Continue, 103 Early Hints) other than 101: skip them.
      while (!ec && rp->get().result_int() >= 100 && rp->get().result_int() < 200 &&
             rp->get().result() != http::status::switching_protocols) {
        rp.emplace();
        rp->body_limit(std::numeric_limits<uint64_t>::max());
        rp->header_limit(64 << 10);
        if (isHead) rp->skip(true);
        co_await http::async_read_header(*conn, upBuf, *rp, asio::redirect_error(kAwait, ec));
      }
    }
    if (!ec) break;
    const bool retry = attempt == 0 && pooled && !bodyStarted && isStaleConnectionError(ec) &&
                       (idempotent || writeFailed);
    conn.reset();
    upBuf.clear();
    if (retry) continue;
    if (bodyStarted && !parser.is_done()) co_return false;  // cannot answer mid-body
    if (ec == beast::error::timeout) {
      co_return co_await sendError(
          client, parser, 504, codeName(Code::kDeadlineExceeded),
          "the app did not answer within " + std::to_string(options_.upstreamTimeoutMs) + " ms");
    }
    co_return co_await sendError(client, parser, 502, "bad_gateway",
                                 "the app's instance failed: " + ec.message());
  }

  // 4. The response.
  dep->requests += 1;
  if (dep->requestsMetric) dep->requestsMetric->inc();
  auto& res = rp->get();
  if (upgrade && res.result() == http::status::switching_protocols) {
    http::response_serializer<http::buffer_body> rsr{res};
    client.expires_after(upstreamTimeout);
    const size_t n =
        co_await http::async_write_header(client, rsr, asio::redirect_error(kAwait, ec));
    if (ec) co_return false;
    dep->egress += static_cast<int64_t>(n);
    co_await tunnel(client, buffer, *conn, upBuf, *dep);
    co_return false;
  }
  const bool upstreamReusable = rp->keep_alive() && !rp->need_eof();
  bool keepClient = clientKeepAlive && parser.is_done();
  stripHopByHop(res, false);
  const bool bodyless = isHead || res.result_int() == 204 || res.result_int() == 304;
  if (clientVersion < 11) {
    // An HTTP/1.0 client can't read chunks: send the body raw and close to end it.
    if (res.chunked()) {
      res.chunked(false);
      keepClient = false;
    }
    res.version(10);
  } else if (rp->need_eof() && !bodyless) {
    res.chunked(true);  // the upstream ends its body by closing; the client gets chunks
  }
  if (clientVersion < 11 && !res.has_content_length()) keepClient = false;
  res.keep_alive(keepClient);

  http::response_serializer<http::buffer_body> rsr{res};
  size_t n = 0;
  // When the body (or its first part) is already buffered, the header goes out with it in one
  // write; otherwise the header goes now, so that a slow or streaming body doesn't hold it.
  if (isHead || (!rp->is_done() && upBuf.size() == 0)) {
    client.expires_after(upstreamTimeout);
    n = co_await http::async_write_header(client, rsr, asio::redirect_error(kAwait, ec));
    if (ec) co_return false;
    dep->egress += static_cast<int64_t>(n);
  }
  if (isHead) {
    if (upstreamReusable && upBuf.size() == 0) {
      auto& slot = io.pool[lease.key];
      if (slot.size() < kPoolPerUpstream) {
        conn->expires_never();
        slot.push_back(std::move(conn));
      }
    }
    co_return keepClient;
  }
  const size_t chunkSize = relayChunkSize(rp->content_length());
  std::unique_ptr<char[]> chunk(new char[chunkSize]);
  do {
    if (!rp->is_done()) {
      res.body().data = chunk.get();
      res.body().size = chunkSize;
      conn->expires_after(upstreamTimeout);
      co_await http::async_read(*conn, upBuf, *rp, asio::redirect_error(kAwait, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return false;  // a truncated body must not look complete: close the client
      res.body().size = chunkSize - res.body().size;
      res.body().data = chunk.get();
      res.body().more = !rp->is_done();
    } else {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
    }
    client.expires_after(upstreamTimeout);
    n = co_await http::async_write(client, rsr, asio::redirect_error(kAwait, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return false;
    dep->egress += static_cast<int64_t>(n);
  } while (!rp->is_done() || !rsr.is_done());

  if (upstreamReusable && upBuf.size() == 0) {
    auto& slot = io.pool[lease.key];
    if (slot.size() < kPoolPerUpstream) {
      conn->expires_never();
      slot.push_back(std::move(conn));
    }
  }
  co_return keepClient;
}

// After a 101: bytes both ways until either side closes. No timeout: WebSockets idle.
asio::awaitable<void> Core::tunnel(beast::tcp_stream& client, beast::flat_buffer& clientBuf,
                                   beast::tcp_stream& upstream, beast::flat_buffer& upstreamBuf,
                                   Deployment& dep) {
  error_code ec;
  client.expires_never();
  upstream.expires_never();
  tcp::socket& a = client.socket();
  tcp::socket& b = upstream.socket();
  if (clientBuf.size() > 0) {
    const size_t n =
        co_await asio::async_write(b, clientBuf.data(), asio::redirect_error(kAwait, ec));
    dep.ingress += static_cast<int64_t>(n);
    clientBuf.consume(clientBuf.size());
  }
  if (!ec && upstreamBuf.size() > 0) {
    const size_t n =
        co_await asio::async_write(a, upstreamBuf.data(), asio::redirect_error(kAwait, ec));
    dep.egress += static_cast<int64_t>(n);
    upstreamBuf.consume(upstreamBuf.size());
  }
  if (ec) co_return;

  auto pump = [](tcp::socket& from, tcp::socket& to,
                 std::atomic<int64_t>& counter) -> asio::awaitable<void> {
    std::array<char, 16 << 10> buf;
    error_code ec;
    for (;;) {
      const size_t n =
          co_await from.async_read_some(asio::buffer(buf), asio::redirect_error(kAwait, ec));
      if (ec) break;
      co_await asio::async_write(to, asio::buffer(buf.data(), n), asio::redirect_error(kAwait, ec));
      if (ec) break;
      counter += static_cast<int64_t>(n);
    }
  };
  auto done = std::make_shared<asio::steady_timer>(client.get_executor(),
                                                   asio::steady_timer::time_point::max());
  auto finished = std::make_shared<bool>(false);
  asio::co_spawn(client.get_executor(), pump(b, a, dep.egress),
                 [done, finished](std::exception_ptr) {
                   *finished = true;
                   done->cancel();
                 });
  co_await pump(a, b, dep.ingress);
  a.shutdown(tcp::socket::shutdown_both, ec);
  b.shutdown(tcp::socket::shutdown_both, ec);
  a.cancel(ec);
  b.cancel(ec);
  while (!*finished) co_await done->async_wait(asio::redirect_error(kAwait, ec));
}

// ---------------------------------------------------------------------------------------------

class FacadeImpl final : public Facade {
 public:
  explicit FacadeImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~FacadeImpl() override { core_->stop(); }
  void start() override { core_->start(); }
  void stop() override { core_->stop(); }
  uint16_t port() const override { return core_->port(); }
  std::string url() const override { return core_->url(); }
  Status addRoute(const RouteConfig& route) override { return core_->addRoute(route); }
  void removeRoute(const std::string& deployment) override { core_->removeRoute(deployment); }
  void setPaymentRequired(const std::string& deployment,
                          std::optional<std::string> reason) override {
    core_->setPaymentRequired(deployment, std::move(reason));
  }
  TrafficCounters counters(const std::string& deployment) override {
    return core_->counters(deployment);
  }
  void restoreCounters(const std::string& deployment, int64_t requests,
                       int64_t egressBytes) override {
    core_->restoreCounters(deployment, requests, egressBytes);
  }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

Result<std::unique_ptr<Facade>> Facade::create(const FacadeOptions& options, FacadeBackend& backend,
                                               Clock& clock) {
  auto core = std::make_shared<Core>(options, backend, clock);
  RETURN_IF_ERROR(core->init());
  return std::unique_ptr<Facade>(std::make_unique<FacadeImpl>(std::move(core)));
}

}  // namespace mercato::provider
