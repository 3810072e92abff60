// Private to the facade: the shared state of its implementation, split by responsibility into
// facade.cpp (lifecycle, routes, counters, scaling), facade_proxy.cpp (the downstream
// connections and the proxying hot path) and forwarding.cpp (header rewriting rules). The threading
// model is described in facade.cpp.
//
// Thread-safety: see Core's members; Deployment fields are guarded by Deployment::mu except the
// atomics.
#pragma once

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

namespace mercato::provider::facade_detail {

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

  // Mirrors `paymentRequired.has_value()` so the request path can skip the lock when paid.
  std::atomic<bool> unpaid{false};
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> egress{0};
  std::atomic<int64_t> ingress{0};

  Counter* requestsMetric = nullptr;
  Counter* coldStartsMetric = nullptr;
  Gauge* queueMetric = nullptr;
  Histogram* latencyMetric = nullptr;
};

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

inline std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

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
  asio::awaitable<bool> acquireUpstream(beast::tcp_stream& client, const RequestParser& parser,
                                        const std::shared_ptr<Deployment>& dep,
                                        SteadyClock::time_point started, Lease& lease,
                                        bool& keepClient);
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

inline Lease::~Lease() {
  if (core) core->release(*this);
}

}  // namespace mercato::provider::facade_detail
