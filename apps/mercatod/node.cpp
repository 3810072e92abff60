#include "mercatod/node.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "crypto/keystore.hpp"
#include "ledger/service.hpp"
#include "net/tls.hpp"

namespace mercato::node {

namespace fs = std::filesystem;

Node::Node(NodeConfig config, Clock& clock) : config_(std::move(config)), clock_(clock) {}

Node::~Node() { stop(); }

namespace {
Result<crypto::Identity> loadOrCreateIdentity(const std::string& dataDir) {
  const std::string path = (fs::path(dataDir) / "node.key").string();
  const char* pass = std::getenv("MERCATO_NODE_PASSPHRASE");
  std::optional<std::string> passphrase;
  if (pass && *pass) passphrase = pass;
  if (fs::exists(path)) return crypto::loadKeystore(path, passphrase);
  auto id = crypto::Identity::generate();
  crypto::KeystoreOptions opts;
  opts.passphrase = passphrase;
  RETURN_IF_ERROR(crypto::saveKeystore(path, id, opts));
  spdlog::info("node: created identity {} in {}", id.address(), path);
  return id;
}
}  // namespace

Status Node::start() {
  std::error_code ec;
  fs::create_directories(config_.dataDir, ec);
  if (ec) return unavailable("cannot create data dir " + config_.dataDir + ": " + ec.message());
  ASSIGN_OR_RETURN(crypto::Identity id, loadOrCreateIdentity(config_.dataDir));
  identity_ = std::make_unique<crypto::Identity>(std::move(id));

  net::Router router;
  router.add("GET", "/healthz", [](const net::HttpRequest&) {
    return net::HttpResponse::json(200, {{"status", "ok"}});
  });
  // Everyone gets totals; per-deployment series (whose labels name tenants' deployments) only
  // with the node's admin token (docs/operations.md, "Metrics").
  ASSIGN_OR_RETURN(std::string adminToken, runtime::loadOrCreateAdminToken(config_.dataDir));
  router.add("GET", "/metrics", [this, adminToken](const net::HttpRequest& req) {
    MetricsRegistry::RenderOptions o;
    if (!req.hasBearerToken(adminToken)) o.foldLabels = {"deployment"};
    return net::HttpResponse::text(200, metrics_.render(o), "text/plain; version=0.0.4");
  });
  const std::string nodeKey = identity_->publicKey().hex();
  const std::string address = identity_->address();
  const bool dev = config_.dev;
  const bool ledgerHost = config_.ledgerHost;
  const bool runtimeRole = config_.runtime;
  const bool providerRole = config_.provider;
  router.add(
      "GET", "/node/v1/identity",
      [nodeKey, address, dev, ledgerHost, runtimeRole, providerRole](const net::HttpRequest&) {
        nlohmann::json roles = nlohmann::json::array();
        if (ledgerHost) roles.push_back("ledger-host");
        if (runtimeRole) roles.push_back("runtime");
        if (providerRole) roles.push_back("provider");
        return net::HttpResponse::json(
            200, {{"nodeKey", nodeKey}, {"address", address}, {"dev", dev}, {"roles", roles}});
      });

  if (config_.ledgerHost) {
    ledger::LedgerConfig lc;
    lc.backend = "embedded";
    lc.dataDir = (fs::path(config_.dataDir) / "ledger").string();
    lc.chainId = config_.chainId;
    lc.devMode = config_.dev;
    lc.closeGraceMs = config_.closeGraceMs;
    lc.syncFull = config_.syncFull;
    lc.clock = &clock_;
    lc.metrics = &metrics_;
    ASSIGN_OR_RETURN(ledger_, ledger::createLedger(lc));
    ledger::registerLedgerRoutes(router, *ledger_);
  }

  // provider.yaml is read first: its `sandbox:` is the cluster backend's, set by the provider.
  std::optional<provider::ProviderConfig> providerConfig;
  if (config_.provider) {
    if (!config_.providerConfigPath.empty()) {
      ASSIGN_OR_RETURN(providerConfig, provider::loadProviderConfig(config_.providerConfigPath));
    } else {
      providerConfig = provider::devProviderConfig();
    }
  }

  if (config_.runtime) {
    runtime::RuntimeConfig rc;
    if (providerConfig) rc.sandbox = providerConfig->sandbox;
    rc.backend = config_.runtimeBackend;
    rc.dataDir = (fs::path(config_.dataDir) / "runtime").string();
    rc.clock = &clock_;
    rc.metrics = &metrics_;
    rc.subnetPool = config_.subnetPool;
    rc.sampleIntervalMs = config_.sampleIntervalMs;
    rc.imageCacheBytes = static_cast<uint64_t>(config_.imageCacheBytes);
    rc.insecureRegistries = config_.insecureRegistries;
    ASSIGN_OR_RETURN(runtime_, runtime::createRuntime(rc));
    ASSIGN_OR_RETURN(std::string token, runtime::loadOrCreateAdminToken(config_.dataDir));
    runtimeService_ = std::make_unique<runtime::RuntimeService>(*runtime_, token);
    runtimeService_->registerRoutes(router);
  }

  std::optional<provider::ProviderConfig> offered;  // what the p2p summary advertises
  if (config_.provider) {
    ledger::Ledger* ledger = ledger_.get();
    if (!ledger) {
      if (config_.ledgerUrl.empty())
        return invalidArgument(
            "provider role: this node hosts no ledger; set ledger.url (or --ledger URL)");
      ledger::LedgerConfig rl;
      rl.backend = "http";
      rl.url = config_.ledgerUrl;
      rl.clock = &clock_;
      ASSIGN_OR_RETURN(remoteLedger_, ledger::createLedger(rl));
      ledger = remoteLedger_.get();
    }
    provider::ProviderOptions po;
    po.config = *providerConfig;
    po.dataDir = (fs::path(config_.dataDir) / "provider").string();
    po.identity = identity_.get();
    po.ledger = ledger;
    po.runtime = runtime_.get();
    po.clock = &clock_;
    po.metrics = &metrics_;
    po.chainId = config_.chainId;
    offered = po.config;
    ASSIGN_OR_RETURN(provider_, provider::Provider::create(std::move(po)));
  }

  if (config_.p2p.enabled) {
    std::vector<std::string> roles;
    if (ledgerHost) roles.push_back("ledger-host");
    if (runtimeRole) roles.push_back("runtime");
    if (providerRole) roles.push_back("provider");
    LocalNodeInfo li{config_.dataDir, runtime_.get(), {}, {}};
    if (offered) li.prices = offered->prices, li.capacity = offered->capacity;
    ASSIGN_OR_RETURN(p2p_, createP2pRole(config_.p2p, config_.dataDir, roles, li, *identity_,
                                         clock_, &metrics_));
    ASSIGN_OR_RETURN(std::string token, runtime::loadOrCreateAdminToken(config_.dataDir));
    p2p_->registerRoutes(router, token);
  }

  net::ServerOptions so;
  so.listen = config_.listen;
  so.threads = config_.threads;
  so.maxBodyBytes = static_cast<size_t>(config_.maxBodyBytes);
  so.readTimeout = std::chrono::milliseconds(config_.readTimeoutMs);
  so.idleTimeout = std::chrono::milliseconds(config_.idleTimeoutMs);
  so.metrics = &metrics_;
  if (config_.tls) {
    std::string host = config_.listen.substr(0, config_.listen.rfind(':'));
    ASSIGN_OR_RETURN(auto cert,
                     net::makeIdentityCertificate(*identity_, "mercato-node", {host, "localhost"}));
    so.tls = net::TlsOptions{cert.certificatePem, cert.privateKeyPem};
  }
  ASSIGN_OR_RETURN(server_, net::HttpServer::create(so, std::move(router)));
  server_->start();
  // --dev: the dev provider's bid engine pays bid deposits from the node account; fund it from
  // the faucet once, so auctions work out of the box.
  if (provider_ && config_.dev && ledger_) {
    auto acct = ledger_->account(address);
    if (!acct.isOk() || acct->balance < 10 * kMicrosPerToken) {
      ledger::Tx tx{config_.chainId, ledger::TxKind::kMint, address,
                    ledger_->nextNonce(address).valueOr(1),
                    ledger::MintBody{address, 1'000 * kMicrosPerToken}};
      if (auto r = ledger_->submitAndWait(ledger::signTx(std::move(tx), *identity_)); !r.isOk())
        spdlog::warn("mercatod: funding the dev provider: {}", r.status().message());
    }
  }
  // The provider registers on the ledger, which this node may be serving: start it last.
  if (provider_) RETURN_IF_ERROR(provider_->start());
  if (p2p_) {
    p2p_->setHttpPort(server_->port());
    RETURN_IF_ERROR(p2p_->start());
  }

  nlohmann::json info = {{"url", server_->url()},
                         {"nodeKey", nodeKey},
                         {"address", address},
                         {"pid", static_cast<int>(::getpid())}};
  if (provider_) {
    info["gatewayUrl"] = provider_->gatewayUrl();
    info["facadeUrl"] = provider_->facadeUrl();
  }
  if (p2p_) info["peerId"] = p2p_->peerId(), info["p2pEndpoint"] = p2p_->endpoint();
  const auto infoPath = fs::path(config_.dataDir) / "node.json";
  const auto tmp = fs::path(config_.dataDir) / "node.json.tmp";
  std::ofstream(tmp) << info.dump() << "\n";
  fs::rename(tmp, infoPath, ec);
  std::string roleNames;
  if (config_.ledgerHost) roleNames += "ledger-host ";
  if (config_.runtime) roleNames += "runtime ";
  if (config_.provider) roleNames += "provider ";
  if (p2p_) roleNames += "p2p ";
  spdlog::info("mercatod: listening on {} (node {}, roles: {}{})", server_->url(), address,
               roleNames.empty() ? "none" : roleNames, config_.dev ? ", dev" : "");
  return Status::ok();
}

void Node::stop() {
  if (provider_) {
    provider_->stop();
    provider_.reset();
  }
  if (server_) {
    server_->stop();
    server_.reset();
  }
  if (p2p_) {
    p2p_->stop();
    p2p_.reset();
  }
  runtimeService_.reset();
  runtime_.reset();  // containers keep running under their shims
  ledger_.reset();
  if (identity_) {
    std::error_code ec;
    fs::remove(fs::path(config_.dataDir) / "node.json", ec);
  }
}

std::string Node::url() const { return server_ ? server_->url() : ""; }

}  // namespace mercato::node
