// Facade implementation (see facade.hpp), part 1: lifecycle, routes, counters and scaling.
// The downstream connections and the proxying hot path are in facade_proxy.cpp; the state both
// share is declared in facade_core.hpp.
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
#include "provider/facade/facade_core.hpp"

namespace mercato::provider {
namespace facade_detail {

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
  dep->unpaid.store(dep->paymentRequired.has_value(), std::memory_order_release);
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

}  // namespace facade_detail

namespace {

using facade_detail::Core;

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
  auto core = std::make_shared<facade_detail::Core>(options, backend, clock);
  RETURN_IF_ERROR(core->init());
  return std::unique_ptr<Facade>(std::make_unique<FacadeImpl>(std::move(core)));
}

}  // namespace mercato::provider
