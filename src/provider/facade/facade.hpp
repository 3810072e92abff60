// Facade: the provider's one HTTP listener for every deployment. It routes requests to the
// deployment's instances, starts instances when requests arrive for an app scaled to zero,
// scales by in-flight load, scales back to `min` when idle, refuses apps whose escrow can't pay
// (402), and counts requests and egress bytes per deployment for metering.
//
// Routing: `Host: <label>.<domain>` (label = the route's hostname or its deployment id), or the
// path prefix `/d/<deployment>/` (stripped before proxying). Unknown hosts/paths get 404.
// Proxying: HTTP/1.1 keep-alive on both sides (a pool of upstream connections per instance),
// request and response bodies streamed in both directions (chunked or sized), WebSocket (and any
// `Upgrade`) tunnelled after the 101, hop-by-hop headers dropped, `X-Forwarded-For/Host/Proto`
// added.
// From zero: requests wait in a bounded per-deployment queue while the backend starts an
// instance; past `coldStartTimeoutMs` they get 503, and past the queue bound they get 503 at once.
// Scaling: when in-flight requests per ready instance exceed `targetConcurrency`, the facade asks
// for one more instance (up to `max`); after `idleTimeoutMs` with no request it asks for `min`.
// Timers run on the injected Clock.
//
// Thread-safety: every public method may be called from any thread. The proxy runs on its own
// I/O threads; FacadeBackend calls are made from a facade-owned worker thread, never from the
// I/O threads (scaling blocks while runc works).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/status.hpp"

namespace mercato::provider {

struct Upstream {
  std::string ip;
  uint16_t port = 0;
};

// What the facade needs from the cluster: implemented by the provider over runtime::Runtime.
class FacadeBackend {
 public:
  virtual ~FacadeBackend() = default;
  // Ready instances of the deployment's exposed service, with the exposed port.
  virtual std::vector<Upstream> readyUpstreams(const std::string& deployment) = 0;
  // Sets the exposed service's replica count (blocking; called from the facade's worker).
  virtual Status scaleTo(const std::string& deployment, int replicas) = 0;
};

struct RouteConfig {
  std::string deployment;
  std::string hostname;  // "" = the deployment id
  int minReplicas = 0;
  int maxReplicas = 1;
  int targetConcurrency = 10;
  int64_t idleTimeoutMs = 60'000;
};

struct FacadeOptions {
  std::string listen = "127.0.0.1:0";
  std::string domain = "apps.localhost";  // Host: <label>.<domain>
  int threads = 2;
  size_t queueLimit = 256;               // waiting requests per deployment while scaling from zero
  int64_t coldStartTimeoutMs = 10'000;   // waiting longer than this: 503
  int64_t upstreamTimeoutMs = 60'000;    // idle time on an upstream exchange before 504
  size_t maxHeaderBytes = 16 << 10;      // request header bytes (431 above)
  size_t maxHeaderCount = 100;           // request header fields (431 above)
  int64_t headerTimeoutMs = 10'000;      // to receive a request header once it has begun
  int64_t clientIdleTimeoutMs = 60'000;  // idle keep-alive client connections are closed after
  MetricsRegistry* metrics = nullptr;
};

struct TrafficCounters {
  int64_t requests = 0;     // requests answered by an instance (not 402/404/503 from us)
  int64_t egressBytes = 0;  // response bytes sent to clients for this deployment
  int64_t ingressBytes = 0;
  int inFlight = 0;
  int64_t lastRequestMs = 0;
};

class Facade {
 public:
  static Result<std::unique_ptr<Facade>> create(const FacadeOptions& options,
                                                FacadeBackend& backend, Clock& clock);
  virtual ~Facade() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual uint16_t port() const = 0;
  virtual std::string url() const = 0;  // "http://127.0.0.1:PORT"

  virtual Status addRoute(const RouteConfig& route) = 0;  // replaces an existing one
  virtual void removeRoute(const std::string& deployment) = 0;
  // While set, the deployment's requests get 402 with `reason` (escrow exhausted). Setting it
  // also forgets the deployment's instances (the provider stops them while unpaid): after it is
  // cleared, the next request takes the from-zero path.
  virtual void setPaymentRequired(const std::string& deployment,
                                  std::optional<std::string> reason) = 0;
  // Cumulative since the route was added (or since restored with restoreCounters).
  virtual TrafficCounters counters(const std::string& deployment) = 0;
  // After a restart: continue the cumulative counters from what was persisted.
  virtual void restoreCounters(const std::string& deployment, int64_t requests,
                               int64_t egressBytes) = 0;
};

}  // namespace mercato::provider
