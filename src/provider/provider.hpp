// Provider: the provider role of a node. It joins the ledger (registration, escrows, claims),
// the cluster backend (runtime::Runtime), the facade and the gateway:
//   - start(): registers the node on the ledger (or updates the registration when provider.yaml
//     changed), restores accepted deployments (facade routes, traffic counters), starts the
//     gateway (HTTPS, certificate bound to the node key) and the claim timer.
//   - intake (acceptBundle): opens a sealed bundle, checks seal, signer, nonce, escrow, terms,
//     manifest and capacity, deploys, adds the facade route, answers with a signed receipt.
//   - settlement (settleOnce, every claim interval on the Clock): claims the cumulative metered
//     usage (never more than was used; cursors survive restarts, so nothing is claimed twice),
//     answers 402 once the escrow is exhausted, removes the app after the grace period, and
//     restores it when a top-up reopens the escrow in time.
//   - FacadeBackend: maps the facade's scale requests onto the runtime.
//
// Thread-safety: public methods may be called from any thread. Settlement runs on its own
// worker thread (ledger calls block), never on the Clock's timer thread.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"
#include "ledger/submitter.hpp"
#include "net/server.hpp"
#include "provider/exec_sessions.hpp"
#include "provider/facade/facade.hpp"
#include "provider/provider_config.hpp"
#include "provider/provider_store.hpp"
#include "runtime/runtime.hpp"

namespace mercato::provider {

namespace bidengine {
class BidEngine;
}

struct ProviderOptions {
  ProviderConfig config;
  std::string dataDir;                         // provider state: DATA_DIR/provider
  const crypto::Identity* identity = nullptr;  // the node identity: owner account and seal key
  ledger::Ledger* ledger = nullptr;
  runtime::Runtime* runtime = nullptr;
  Clock* clock = nullptr;
  MetricsRegistry* metrics = nullptr;
  std::string chainId = "mercato-dev";
};

// What one accepted deployment looks like to its owner.
struct DeploymentView {
  DeploymentRecord record;
  std::vector<std::string> urls;
  ledger::Usage metered;  // cumulative, as the next claim would say
  ClaimCursor claimed;
};

class Provider : public FacadeBackend {
 public:
  static Result<std::unique_ptr<Provider>> create(ProviderOptions options);
  ~Provider() override;

  Status start();
  void stop();

  std::string gatewayUrl() const;
  std::string facadeUrl() const;
  const std::string& address() const { return address_; }

  // Intake: returns the signed receipt JSON.
  Result<nlohmann::json> acceptBundle(std::string_view sealed);
  // One settlement round over every deployment (also run by the timer).
  Status settleOnce();

  Result<DeploymentView> view(const std::string& deploymentId);
  Result<std::vector<DeploymentView>> views(const std::string& publisher);
  std::vector<std::string> urlsFor(const std::string& deploymentId) const;
  ledger::Usage meteredUsage(const std::string& deploymentId);

  // FacadeBackend
  std::vector<Upstream> readyUpstreams(const std::string& deployment) override;
  Status scaleTo(const std::string& deployment, int replicas) override;

  // GET /status (status.cpp): cluster inventory and leases, the bid engine, the manifests.
  nlohmann::json statusJson();
  // The bid engine, when provider.yaml enables bidding; nullptr otherwise.
  bidengine::BidEngine* bidEngine() { return bidEngine_.get(); }

  Facade& facade() { return *facade_; }
  runtime::Runtime& runtime() { return *opts_.runtime; }
  ProviderStore& store() { return *store_; }

 private:
  explicit Provider(ProviderOptions options);
  Status registerOnLedger();
  Status startBidEngine();
  Status restore();
  Status addRoute(const DeploymentRecord& d);
  // Signs with the next nonce of the provider account (serialized) and waits for the receipt.
  Status submit(ledger::TxKind kind, ledger::TxBody body, uint64_t* nonceOut = nullptr);
  Status settle(DeploymentRecord d);
  void removeDeployment(DeploymentRecord& d, const std::string& reason);
  void registerGatewayRoutes(net::Router& router);
  // Runs a handler's blocking work on the gateway's worker pool and sends its answer.
  using GatewayWorker =
      std::function<void(std::shared_ptr<net::ResponseWriter>, std::function<net::HttpResponse()>)>;
  void registerUploadRoutes(net::Router& router, const GatewayWorker& onWorker);
  // The peak CPU and memory the non-removed `deployments` may occupy (their manifests' resources
  // x scaling.max): what intake checks capacity against and /status reports as allocated.
  static Result<ledger::Capacity> peakInUse(
      const Result<std::vector<DeploymentRecord>>& deployments);
  void scheduleClaims();
  bool stoppingFlag() {
    std::lock_guard lock(settleMu_);
    return stopping_;
  }

  ProviderOptions opts_;
  std::string address_;
  std::unique_ptr<ProviderStore> store_;
  std::unique_ptr<Facade> facade_;
  std::unique_ptr<net::HttpServer> gateway_;
  std::string gatewayUrl_;
  std::mutex intakeMu_;  // one intake at a time: capacity checks see committed state
  // The provider account's transactions (registration, claims, bids), nonces pipelined.
  std::unique_ptr<ledger::AccountSubmitter> submitter_;
  std::array<uint8_t, 32> macaroonSecret_{};

  std::mutex settleMu_;
  std::condition_variable settleCv_;
  bool settleDue_ = false;
  bool stopping_ = false;
  std::thread settler_;
  TimerId claimTimer_ = 0;
  std::atomic<int> logStreams_{0};  // log streams on their own threads; stop() waits for them
  std::unique_ptr<ExecSessions> execSessions_;  // interactive exec over WebSocket
  std::unique_ptr<bidengine::BidEngine> bidEngine_;
  std::atomic<size_t> pendingIntakes_{0};  // bundles being checked and deployed right now
};

}  // namespace mercato::provider
