#include "provider/provider.hpp"

#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "crypto/hash.hpp"
#include "ledger/tx.hpp"
#include "manifest/manifest.hpp"
#include "net/tls.hpp"
#include "provider/bidengine/bid_engine.hpp"
#include "publisher/bundle.hpp"
#include "publisher/receipt.hpp"
#include "runtime/spec_json.hpp"

#include <unistd.h>

namespace mercato::provider {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Deployment ids are DNS labels derived from the escrow: one deployment per escrow.
std::string deploymentIdFor(const std::string& escrowId) {
  auto h = crypto::blake2b256(std::string_view(escrowId));
  return "d" +
         toHex(std::string_view(reinterpret_cast<const char*>(h.data()), h.size())).substr(0, 11);
}

std::string hostOf(const std::string& listen) { return listen.substr(0, listen.rfind(':')); }

}  // namespace

Provider::Provider(ProviderOptions options) : opts_(std::move(options)) {}

Result<std::unique_ptr<Provider>> Provider::create(ProviderOptions options) {
  if (!options.identity || !options.ledger || !options.runtime || !options.clock)
    return invalidArgument("provider: identity, ledger, runtime and clock are required");
  std::unique_ptr<Provider> p(new Provider(std::move(options)));
  p->address_ = p->opts_.identity->address();
  p->submitter_ = std::make_unique<ledger::AccountSubmitter>(*p->opts_.ledger, *p->opts_.identity,
                                                             p->opts_.chainId);
  std::error_code ec;
  fs::create_directories(fs::path(p->opts_.dataDir) / "bundles", ec);
  if (ec) return internalError("provider: creating " + p->opts_.dataDir + ": " + ec.message());
  ASSIGN_OR_RETURN(p->store_, ProviderStore::open(p->opts_.dataDir + "/provider.db"));
  // The macaroon secret is derived from the node key, so tokens survive restarts.
  auto seed = p->opts_.identity->seed();
  crypto_generichash(p->macaroonSecret_.data(), p->macaroonSecret_.size(),
                     reinterpret_cast<const unsigned char*>(seed.data()), seed.size(),
                     reinterpret_cast<const unsigned char*>("mercato-macaroons"), 17);
  FacadeOptions fo;
  fo.listen = p->opts_.config.facadeListen;
  fo.domain = p->opts_.config.facadeDomain;
  fo.metrics = p->opts_.metrics;
  ASSIGN_OR_RETURN(p->facade_, Facade::create(fo, *p, *p->opts_.clock));
  return p;
}

Provider::~Provider() { stop(); }

Status Provider::start() {
  facade_->start();
  RETURN_IF_ERROR(restore());

  net::Router router;
  registerGatewayRoutes(router);
  net::ServerOptions so;
  so.listen = opts_.config.gatewayListen;
  so.maxBodyBytes = std::min<size_t>(static_cast<size_t>(opts_.config.maxBundleBytes), 64u << 20);
  so.metrics = opts_.metrics;
  std::string host = hostOf(opts_.config.gatewayListen);
  ASSIGN_OR_RETURN(auto cert, net::makeIdentityCertificate(*opts_.identity, "mercato-gateway",
                                                           {host, "localhost", "127.0.0.1"}));
  so.tls = net::TlsOptions{cert.certificatePem, cert.privateKeyPem};
  ASSIGN_OR_RETURN(gateway_, net::HttpServer::create(so, std::move(router)));
  gateway_->start();
  gatewayUrl_ = opts_.config.gatewayUrl.empty() ? gateway_->url() : opts_.config.gatewayUrl;
  RETURN_IF_ERROR(registerOnLedger());
  if (opts_.config.bidding) RETURN_IF_ERROR(startBidEngine());

  settler_ = std::thread([this] {
    while (true) {
      {
        std::unique_lock lock(settleMu_);
        settleCv_.wait(lock, [&] { return stopping_ || settleDue_; });
        if (stopping_) return;
        settleDue_ = false;
      }
      if (Status s = settleOnce(); !s.isOk()) spdlog::warn("provider: settlement: {}", s.message());
    }
  });
  scheduleClaims();
  spdlog::info("provider: gateway {} facade {} (node {})", gatewayUrl_, facadeUrl(), address_);
  return Status();
}

void Provider::stop() {
  {
    std::lock_guard lock(settleMu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (bidEngine_) bidEngine_->stop();  // first: it submits bids through this provider
  settleCv_.notify_all();
  if (claimTimer_) opts_.clock->cancel(claimTimer_);
  if (settler_.joinable()) settler_.join();
  if (gateway_) gateway_->stop();
  if (execSessions_) execSessions_->closeAll();
  while (logStreams_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Persist the traffic counters so the next start continues them.
  if (auto all = store_->deployments(false); all.isOk())
    for (const auto& d : *all) {
      auto c = facade_->counters(d.id);
      warnIfError(store_->putTraffic(d.id, c.requests, c.egressBytes),
                  "provider: saving the traffic counters of " + d.id);
    }
  if (facade_) facade_->stop();
}

void Provider::scheduleClaims() {
  claimTimer_ = opts_.clock->callAfter(Millis(opts_.config.claimIntervalMs), [this] {
    {
      std::lock_guard lock(settleMu_);
      if (stopping_) return;
      settleDue_ = true;
    }
    settleCv_.notify_all();
    scheduleClaims();
  });
}

std::string Provider::gatewayUrl() const { return gatewayUrl_; }

std::string Provider::facadeUrl() const {
  return opts_.config.facadeUrl.empty() ? facade_->url() : opts_.config.facadeUrl;
}

std::vector<std::string> Provider::urlsFor(const std::string& id) const {
  std::string base = facadeUrl();
  std::string port = base.substr(base.rfind(':'));
  if (port.find('/') != std::string::npos) port.clear();
  return {base + "/d/" + id + "/", "http://" + id + "." + opts_.config.facadeDomain + port + "/"};
}

// ---------------------------------------------------------------------------------------------
// Ledger

Status Provider::submit(ledger::TxKind kind, ledger::TxBody body, uint64_t* nonceOut) {
  return submitter_->submit(kind, body, nonceOut).status();
}

Status Provider::startBidEngine() {
  bidengine::BidEngineOptions o;
  o.ledger = opts_.ledger;
  o.clock = opts_.clock;
  o.identity = opts_.identity;
  o.chainId = opts_.chainId;
  o.capacity = opts_.config.capacity;
  o.defaultRates = opts_.config.prices;
  o.config = *opts_.config.bidding;
  o.metrics = opts_.metrics;
  o.submit = [this](ledger::TxKind kind, ledger::TxBody body) -> Result<uint64_t> {
    uint64_t nonce = 0;
    RETURN_IF_ERROR(submit(kind, std::move(body), &nonce));
    return nonce;
  };
  ProviderStore* store = store_.get();
  o.loadCursor = [store] { return store->eventCursor("bidengine"); };
  o.saveCursor = [store](uint64_t seq) { return store->putEventCursor("bidengine", seq); };
  // A lease's escrow id is the lease id: its deployment, once removed, never serves again.
  o.leaseEndedLocally = [store](const std::string& lease) {
    auto d = store->deploymentForEscrow(lease);
    return d.isOk() && d->has_value() && (*d)->state == "removed";
  };
  ASSIGN_OR_RETURN(bidEngine_, bidengine::BidEngine::create(std::move(o)));
  return bidEngine_->start();
}

Status Provider::registerOnLedger() {
  ledger::ProviderBody body;
  body.nodeKey = opts_.identity->publicKey().hex();
  body.gatewayUrl = gatewayUrl_;
  body.attributes = opts_.config.attributes;
  body.capacity = opts_.config.capacity;
  body.prices = opts_.config.prices;
  auto existing = opts_.ledger->provider(address_);
  if (existing.isOk() && existing->active) {
    if (existing->nodeKey == body.nodeKey && existing->gatewayUrl == body.gatewayUrl &&
        existing->attributes == body.attributes && existing->capacity == body.capacity &&
        existing->prices == body.prices)
      return Status();
    spdlog::info("provider: updating the registration (provider.yaml or address changed)");
    return submit(ledger::TxKind::kProviderUpdate, body);
  }
  spdlog::info("provider: registering {} on the ledger", address_);
  return submit(ledger::TxKind::kProviderRegister, body);
}

// ---------------------------------------------------------------------------------------------
// Intake

Result<ledger::Capacity> Provider::peakInUse(
    const Result<std::vector<DeploymentRecord>>& deployments) {
  if (!deployments.isOk()) return deployments.status();
  ledger::Capacity used;
  for (const auto& d : *deployments) {
    if (d.state == "removed") continue;
    auto m = manifest::manifestFromJson(json::parse(d.manifestJson, nullptr, false));
    if (!m.isOk()) continue;
    used.cpu += m->peakCpuMillis();
    used.memory += m->peakMemoryBytes();
  }
  return used;
}

Result<nlohmann::json> Provider::acceptBundle(std::string_view sealed) {
  if (static_cast<int64_t>(sealed.size()) > opts_.config.maxBundleBytes)
    return tooLarge("bundle: " + std::to_string(sealed.size()) + " bytes is over this provider's " +
                    std::to_string(opts_.config.maxBundleBytes) + " limit");
  ++pendingIntakes_;
  struct Pending {
    std::atomic<size_t>& n;
    ~Pending() { --n; }
  } pending{pendingIntakes_};
  std::lock_guard intake(intakeMu_);
  std::string work = opts_.dataDir + "/bundles/incoming-" + std::to_string(::getpid()) + "-" +
                     std::to_string(opts_.clock->nowMillis());
  std::error_code ec;
  fs::create_directories(work, ec);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code e;
      if (!dir.empty()) fs::remove_all(dir, e);
    }
  } cleanup{work};

  ASSIGN_OR_RETURN(auto opened,
                   bundle::openSealedBundle(*opts_.identity, sealed, work,
                                            static_cast<uint64_t>(opts_.config.maxBundleBytes)));
  const auto& h = opened.header;
  if (h.provider != address_)
    return permissionDenied("bundle: addressed to provider " + h.provider + ", this is " +
                            address_);
  // The escrow: ours, the bundle's publisher's, funded, open, at our current prices.
  auto escrow = opts_.ledger->escrow(h.escrowId);
  if (!escrow.isOk())
    return escrow.status().code() == Code::kNotFound
               ? Status(Code::kFailedPrecondition,
                        "bundle: escrow " + h.escrowId + " does not exist on the ledger")
               : escrow.status();
  if (escrow->provider != address_)
    return permissionDenied("bundle: escrow " + h.escrowId + " pays provider " + escrow->provider +
                            ", not this one");
  if (escrow->publisher != h.publisher)
    return permissionDenied("bundle: escrow " + h.escrowId + " belongs to " + escrow->publisher +
                            ", not to the bundle's publisher " + h.publisher);
  if (escrow->state != ledger::EscrowState::kOpen)
    return failedPrecondition("bundle: escrow " + h.escrowId + " is " +
                              ledger::escrowStateName(escrow->state) + ", not open");
  if (escrow->balance() <= 0)
    return Status(Code::kPaymentRequired, "bundle: escrow " + h.escrowId + " is not funded");
  if (!(escrow->terms == opts_.config.prices)) {
    // A lease won in an auction carries the bid's price, not the list price; the app must then
    // fit what the order asked for.
    auto lease = opts_.ledger->lease(h.escrowId);
    if (!lease.isOk() || lease->provider != address_ || !(lease->price == escrow->terms))
      return failedPrecondition("bundle: escrow " + h.escrowId +
                                " terms don't match this provider's current prices");
    ASSIGN_OR_RETURN(auto order, opts_.ledger->order(lease->order));
    const ledger::Capacity leased = order.requirements.total();
    if (h.manifest.peakCpuMillis() > leased.cpu || h.manifest.peakMemoryBytes() > leased.memory)
      return failedPrecondition(
          "bundle: the app needs " + std::to_string(h.manifest.peakCpuMillis()) + "m CPU and " +
          std::to_string(h.manifest.peakMemoryBytes()) + " bytes at peak, more than lease " +
          lease->id + " covers (" + std::to_string(leased.cpu) + "m, " +
          std::to_string(leased.memory) + " bytes)");
  }
  ASSIGN_OR_RETURN(auto existing, store_->deploymentForEscrow(h.escrowId));
  if (existing)
    return alreadyExists("bundle: escrow " + h.escrowId + " already funds deployment " +
                         existing->id);
  // Capacity: the app's peak against what the accepted apps may peak at.
  ASSIGN_OR_RETURN(ledger::Capacity used, peakInUse(store_->deployments(false)));
  const int64_t usedCpu = used.cpu, usedMem = used.memory;
  const auto& cap = opts_.config.capacity;
  if (usedCpu + h.manifest.peakCpuMillis() > cap.cpu)
    return resourceExhausted("bundle: the app needs " + std::to_string(h.manifest.peakCpuMillis()) +
                             "m CPU at peak; this provider has " +
                             std::to_string(std::max<int64_t>(0, cap.cpu - usedCpu)) + "m free");
  if (usedMem + h.manifest.peakMemoryBytes() > cap.memory)
    return resourceExhausted("bundle: the app needs " +
                             std::to_string(h.manifest.peakMemoryBytes()) +
                             " bytes of memory at peak; this provider has " +
                             std::to_string(std::max<int64_t>(0, cap.memory - usedMem)) + " free");
  // Replay protection comes last among the checks so a rejected bundle can be fixed and
  // resent, but before anything runs.
  RETURN_IF_ERROR(store_->useNonce(h.nonce, opts_.clock->nowMillis()));

  DeploymentRecord rec;
  rec.id = deploymentIdFor(h.escrowId);
  rec.escrowId = h.escrowId;
  rec.publisher = h.publisher;
  rec.manifestJson = manifest::toJson(h.manifest).dump();
  rec.state = "active";
  rec.createdAtMs = opts_.clock->nowMillis();

  // Bundled images move next to the provider's state; the runtime imports them from there.
  std::string imageDir = opts_.dataDir + "/bundles/" + rec.id;
  fs::create_directories(imageDir, ec);
  std::map<std::string, std::string> images;
  for (const auto& [component, path] : opened.imagePaths) {
    std::string dest = imageDir + "/" + component + ".tar";
    fs::rename(path, dest, ec);
    if (ec) return internalError("bundle: storing image of " + component + ": " + ec.message());
    images[component] = dest;
  }
  auto spec = manifest::toDeploymentSpec(h.manifest, rec.id, h.publisher,
                                         [&](const manifest::Component& c) {
                                           auto it = images.find(c.name);
                                           return it != images.end() ? it->second : std::string();
                                         });
  publisher::Receipt receipt;
  receipt.deploymentId = rec.id;
  receipt.escrowId = h.escrowId;
  receipt.provider = address_;
  receipt.publisher = h.publisher;
  receipt.urls = urlsFor(rec.id);
  receipt.terms = escrow->terms;
  receipt.createdAtMs = rec.createdAtMs;
  publisher::signReceipt(receipt, *opts_.identity);
  rec.receiptJson = publisher::toJson(receipt).dump();
  RETURN_IF_ERROR(store_->putDeployment(rec));

  if (Status s = opts_.runtime->deploy(spec); !s.isOk()) {
    rec.state = "removed";
    rec.reason = "deploy failed: " + s.message();
    warnIfError(store_->putDeployment(rec), "provider: recording the failed deploy of " + rec.id);
    fs::remove_all(imageDir, ec);
    return s;
  }
  if (Status s = addRoute(rec); !s.isOk()) {
    warnIfError(opts_.runtime->remove(rec.id), "provider: removing " + rec.id);
    rec.state = "removed";
    rec.reason = "facade route: " + s.message();
    warnIfError(store_->putDeployment(rec), "provider: recording the failed route of " + rec.id);
    return s;
  }
  spdlog::info("provider: deployed {} for {} (escrow {})", rec.id, rec.publisher, rec.escrowId);
  return publisher::toJson(receipt);
}

Status Provider::addRoute(const DeploymentRecord& d) {
  auto m = manifest::manifestFromJson(json::parse(d.manifestJson, nullptr, false));
  if (!m.isOk()) return m.status();
  const manifest::Component* c = m->exposed();
  if (!c) return Status();  // nothing to route (workers only)
  RouteConfig r;
  r.deployment = d.id;
  r.hostname = c->expose->hostname;
  r.minReplicas = c->scaling.min;
  r.maxReplicas = c->scaling.max;
  r.targetConcurrency = c->scaling.targetConcurrency;
  r.idleTimeoutMs = c->scaling.idleTimeoutMs;
  return facade_->addRoute(r);
}

Status Provider::restore() {
  ASSIGN_OR_RETURN(auto all, store_->deployments(false));
  for (const auto& d : all) {
    RETURN_IF_ERROR(addRoute(d));
    ASSIGN_OR_RETURN(auto t, store_->traffic(d.id));
    facade_->restoreCounters(d.id, t.first, t.second);
    if (d.state == "suspended")
      facade_->setPaymentRequired(d.id, "escrow " + d.escrowId + " is exhausted: top it up");
  }
  return Status();
}

// ---------------------------------------------------------------------------------------------
// Facade backend

namespace {
const runtime::ServiceStatus* exposedService(const runtime::DeploymentStatus& st,
                                             const manifest::Manifest& m) {
  const manifest::Component* c = m.exposed();
  if (!c) return nullptr;
  for (const auto& s : st.services)
    if (s.name == c->name) return &s;
  return nullptr;
}
}  // namespace

std::vector<Upstream> Provider::readyUpstreams(const std::string& deployment) {
  std::vector<Upstream> out;
  auto rec = store_->deployment(deployment);
  if (!rec.isOk()) return out;
  auto m = manifest::manifestFromJson(json::parse(rec->manifestJson, nullptr, false));
  auto st = opts_.runtime->status(deployment);
  if (!m.isOk() || !st.isOk()) return out;
  const auto* svc = exposedService(*st, *m);
  if (!svc) return out;
  for (const auto& i : svc->instances)
    if (i.ready) out.push_back({i.ip, m->exposed()->expose->port});
  return out;
}

Status Provider::scaleTo(const std::string& deployment, int replicas) {
  ASSIGN_OR_RETURN(auto rec, store_->deployment(deployment));
  if (rec.state != "active")
    return failedPrecondition("deployment " + deployment + " is " + rec.state);
  auto m = manifest::manifestFromJson(json::parse(rec.manifestJson, nullptr, false));
  if (!m.isOk()) return m.status();
  if (!m->exposed()) return failedPrecondition("deployment " + deployment + " exposes nothing");
  return opts_.runtime->scale(deployment, m->exposed()->name, replicas);
}

// ---------------------------------------------------------------------------------------------
// Settlement

ledger::Usage Provider::meteredUsage(const std::string& deploymentId) {
  ledger::Usage u;
  if (auto st = opts_.runtime->stats(deploymentId); st.isOk()) {
    u.cpuMillis = static_cast<int64_t>(st->total.cpuSeconds * 1000.0);
    u.memMibSeconds = static_cast<int64_t>(st->total.memoryGiBSeconds * 1024.0);
    u.egressBytes = st->total.netTxBytes;
    u.storageMibSeconds = static_cast<int64_t>(st->total.storageGiBSeconds * 1024.0);
  }
  u.requests = facade_->counters(deploymentId).requests;
  return u;
}

Status Provider::settleOnce() {
  ASSIGN_OR_RETURN(auto all, store_->deployments(false));
  Status first;
  for (auto& d : all) {
    Status s = settle(d);
    if (!s.isOk()) {
      spdlog::warn("provider: settling {}: {}", d.id, s.message());
      if (first.isOk()) first = s;
    }
  }
  return first;
}

Status Provider::settle(DeploymentRecord d) {
  auto traffic = facade_->counters(d.id);
  // Claims never run ahead of what a restart would restore.
  RETURN_IF_ERROR(store_->putTraffic(d.id, traffic.requests, traffic.egressBytes));
  ASSIGN_OR_RETURN(auto cursor, store_->claimCursor(d.id));
  // Cumulative and monotonic: never below what was already claimed, never above what the
  // meters say (they only grow).
  ledger::Usage usage = ledger::maxUsage(meteredUsage(d.id), cursor.claimed);
  if (!(usage == cursor.claimed)) {
    ledger::EscrowClaimBody body;
    body.escrow = d.escrowId;
    body.usage = usage;
    Status s = submit(ledger::TxKind::kEscrowClaim, body);
    if (s.isOk()) {
      cursor.claimed = usage;
      cursor.claimedAtMs = opts_.clock->nowMillis();
      RETURN_IF_ERROR(store_->putClaimCursor(d.id, cursor));
    } else if (s.code() != Code::kFailedPrecondition) {
      return s;  // transient: retried next round
    } else {
      spdlog::warn("provider: claim for {} refused: {}", d.id, s.message());
    }
  }
  ASSIGN_OR_RETURN(auto escrow, opts_.ledger->escrow(d.escrowId));
  int64_t now = opts_.clock->nowMillis();
  switch (escrow.state) {
    case ledger::EscrowState::kOpen:
      if (d.state == "suspended") {
        d.state = "active";
        d.suspendedAtMs = 0;
        d.reason.clear();
        RETURN_IF_ERROR(store_->putDeployment(d));
        facade_->setPaymentRequired(d.id, std::nullopt);
        spdlog::info("provider: {} restored: escrow {} topped up", d.id, d.escrowId);
      }
      break;
    case ledger::EscrowState::kExhausted:
      if (d.state == "active") {
        d.state = "suspended";
        d.suspendedAtMs = now;
        d.reason = "escrow exhausted";
        RETURN_IF_ERROR(store_->putDeployment(d));
        facade_->setPaymentRequired(
            d.id, "escrow " + d.escrowId + " is exhausted: top it up within " +
                      std::to_string(opts_.config.graceMs / 1000) + " s or the app is removed");
        // Stop serving (and consuming) until paid.
        auto m = manifest::manifestFromJson(json::parse(d.manifestJson, nullptr, false));
        if (m.isOk())
          for (const auto& c : m->components)
            warnIfError(opts_.runtime->scale(d.id, c.name, 0),
                        "provider: scaling " + d.id + "/" + c.name + " to zero");
        spdlog::info("provider: {} suspended: escrow {} exhausted", d.id, d.escrowId);
      } else if (now - d.suspendedAtMs >= opts_.config.graceMs) {
        removeDeployment(d, "escrow exhausted and not topped up within the grace period");
      }
      break;
    case ledger::EscrowState::kClosing:
    case ledger::EscrowState::kClosed:
      removeDeployment(d, "escrow " + ledger::escrowStateName(escrow.state) + " by the publisher");
      break;
  }
  return Status();
}

void Provider::removeDeployment(DeploymentRecord& d, const std::string& reason) {
  facade_->setPaymentRequired(d.id, std::nullopt);
  facade_->removeRoute(d.id);
  Status s = opts_.runtime->remove(d.id);
  if (!s.isOk() && s.code() != Code::kNotFound)
    spdlog::warn("provider: removing {}: {}", d.id, s.message());
  std::error_code ec;
  fs::remove_all(opts_.dataDir + "/bundles/" + d.id, ec);
  d.state = "removed";
  d.reason = reason;
  // On failure the record stays active and the next start removes it again.
  warnIfError(store_->putDeployment(d), "provider: recording the removal of " + d.id);
  if (bidEngine_) bidEngine_->leaseEnded(d.escrowId);  // no-op unless it was a lease of ours
  spdlog::info("provider: {} removed: {}", d.id, reason);
}

// ---------------------------------------------------------------------------------------------
// Views

Result<DeploymentView> Provider::view(const std::string& id) {
  DeploymentView v;
  ASSIGN_OR_RETURN(v.record, store_->deployment(id));
  v.urls = urlsFor(id);
  if (v.record.state != "removed") v.metered = meteredUsage(id);
  ASSIGN_OR_RETURN(v.claimed, store_->claimCursor(id));
  v.metered = ledger::maxUsage(v.metered, v.claimed.claimed);
  return v;
}

Result<std::vector<DeploymentView>> Provider::views(const std::string& publisher) {
  ASSIGN_OR_RETURN(auto all, store_->deployments(true));
  std::vector<DeploymentView> out;
  for (const auto& d : all) {
    if (!publisher.empty() && d.publisher != publisher) continue;
    auto v = view(d.id);
    if (v.isOk()) out.push_back(std::move(*v));
  }
  return out;
}

}  // namespace mercato::provider
