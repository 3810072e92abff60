// mercato deploy app.yaml [--provider ADDR | --select cheapest|latency|manual] [--deposit AMOUNT]
//                         [--max-price cpu=..,mem=..,egress=..,req=..,storage=..] [--attr k=v]...
// mercato deploy app.yaml --auction [--wait 10s] [--select cheapest|score|manual] ...
//
// The publishing flow of docs/operations.md ("Publishing"): validate the manifest, choose a
// provider from the registry, open the escrow while the bundle is sealed (the escrow id is known
// up front: it derives from the publisher's address and the open's nonce), upload, check the
// provider's signed receipt and remember the deployment in $MERCATO_HOME/deployments.json.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>

#include "common/money.hpp"
#include "common/units.hpp"
#include "manifest/manifest.hpp"
#include "mercato/auction.hpp"
#include "mercato/cli.hpp"
#include "mercato/deployments.hpp"
#include "net/client.hpp"
#include "publisher/bundle.hpp"
#include "publisher/gateway_client.hpp"
#include "publisher/selection.hpp"

namespace mercato::cli {

using nlohmann::json;

namespace {

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string humanBytes(uint64_t b) {
  char buf[32];
  if (b < (1 << 10)) return std::to_string(b) + " B";
  if (b < (1 << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  }
  return buf;
}

// A one-line progress bar on stderr, drawn only on a terminal (and never with --json).
class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled) : label_(std::move(label)), enabled_(enabled) {}
  ~ProgressBar() { finish(); }
  void update(uint64_t done, uint64_t total) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && (total == 0 || done < total) && now - last_ < std::chrono::milliseconds(80))
      return;
    last_ = now;
    drawn_ = true;
    if (total == 0) {  // size not known up front: bytes only
      std::fprintf(stderr, "\r%-9s %s   ", label_.c_str(), humanBytes(done).c_str());
      std::fflush(stderr);
      return;
    }
    const int width = 30;
    const int filled = total ? static_cast<int>(width * done / total) : width;
    const int pct = total ? static_cast<int>(100 * done / total) : 100;
    std::fprintf(stderr, "\r%-9s [%s%s] %3d%%  %s / %s   ", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), pct,
                 humanBytes(done).c_str(), humanBytes(total).c_str());
    std::fflush(stderr);
  }
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

Table candidateTable(const std::vector<publisher::Candidate>& cands, bool numbered) {
  std::vector<std::string> header = {"PROVIDER", "GATEWAY",         "CPU",
                                     "MEMORY",   "EST. 1H AT PEAK", "RTT"};
  if (numbered) header.insert(header.begin(), "#");
  Table t(header);
  for (size_t i = 0; i < cands.size(); ++i) {
    const auto& c = cands[i];
    std::vector<std::string> row = {c.provider.owner,
                                    c.provider.gatewayUrl,
                                    formatCpu(c.provider.capacity.cpu),
                                    formatBytes(c.provider.capacity.memory),
                                    money(c.hourlyCost),
                                    c.rttMs ? std::to_string(*c.rttMs) + " ms" : "-"};
    if (numbered) row.insert(row.begin(), std::to_string(i + 1));
    t.row(row);
  }
  return t;
}

struct DeployFlags {
  std::string manifestPath, provider, select = "cheapest", deposit, maxPrice;
  std::vector<std::string> attributes;
  bool auction = false;
  std::string wait = "10s";
};

Result<ledger::ProviderRecord> chooseProvider(Context& ctx, ledger::Ledger& l, const DeployFlags& f,
                                              const publisher::Requirements& req,
                                              const std::string& appName) {
  if (!f.provider.empty()) {
    auto p = l.provider(f.provider);
    if (!p.isOk()) return p.status().withContext("--provider");
    if (std::string why = publisher::rejectionReason(*p, req); !why.empty())
      return failedPrecondition("provider " + f.provider + " cannot host '" + appName +
                                "': " + why);
    return p;
  }
  ASSIGN_OR_RETURN(publisher::Strategy strategy, publisher::parseStrategy(f.select));
  ASSIGN_OR_RETURN(auto all, l.providers(false));
  publisher::Selection sel = publisher::filterProviders(all, req);
  if (sel.eligible.empty()) {
    std::string why;
    for (const auto& r : sel.rejected) why += "\n  " + r.owner + ": " + r.reason;
    return notFound("no registered provider can host '" + appName + "' (cpu " +
                    formatCpu(req.cpuMillis) + ", memory " + formatBytes(req.memoryBytes) +
                    " at peak)" + (why.empty() ? ": the registry is empty" : ":" + why));
  }
  if (strategy != publisher::Strategy::kCheapest) {
    std::vector<ledger::ProviderRecord> ps;
    for (const auto& c : sel.eligible) ps.push_back(c.provider);
    auto rtts = gatewayRttsMs(ps);
    for (size_t i = 0; i < rtts.size(); ++i) sel.eligible[i].rttMs = rtts[i];
  }
  publisher::rankCandidates(sel.eligible, strategy == publisher::Strategy::kLatency
                                              ? publisher::Strategy::kLatency
                                              : publisher::Strategy::kCheapest);
  if (strategy != publisher::Strategy::kManual) return sel.eligible.front().provider;
  ASSIGN_OR_RETURN(size_t pick,
                   askChoice(candidateTable(sel.eligible, true).render(), "choose a provider",
                             sel.eligible.size(),
                             "--select manual needs a terminal to ask on; pass --provider ADDR "
                             "or --select cheapest|latency"));
  (void)ctx;
  return sel.eligible[pick].provider;
}

Status runDeploy(Context& ctx, const DeployFlags& f) {
  const bool tty = isatty(STDERR_FILENO) && !ctx.globals().json;
  ASSIGN_OR_RETURN(manifest::Manifest m, manifest::loadManifestFile(f.manifestPath));
  publisher::Requirements req;
  req.cpuMillis = m.peakCpuMillis();
  req.memoryBytes = m.peakMemoryBytes();
  req.storageBytes = m.peakStorageBytes();
  ASSIGN_OR_RETURN(req.attributes, publisher::parseAttributes(f.attributes));
  ASSIGN_OR_RETURN(req.maxPrices, publisher::parseMaxPrices(f.maxPrice));
  std::optional<Micros> deposit;
  if (!f.deposit.empty()) {
    ASSIGN_OR_RETURN(deposit, amountArg("--deposit", f.deposit));
    if (*deposit <= 0) return invalidArgument("--deposit: must be more than 0");
  }
  ASSIGN_OR_RETURN(crypto::Identity id, ctx.loadKey());
  ASSIGN_OR_RETURN(ledger::Ledger * l, ctx.ledger());
  ledger::ProviderRecord p;
  std::string escrowId;
  Micros amount = 0;
  // Direct selection opens the escrow while the bundle is sealed; an auction's escrow is the
  // accepted lease, which exists before sealing starts.
  std::optional<std::future<Result<ledger::TxReceipt>>> opening;
  if (f.auction) {
    AuctionOptions a;
    a.select = f.select;
    ASSIGN_OR_RETURN(a.waitMs, manifest::parseDurationMs(f.wait));
    a.deposit = deposit.value_or(10 * kMicrosPerToken);
    a.maxPrice = {req.maxPrices.cpuSecond, req.maxPrices.memGibSecond, req.maxPrices.egressGib,
                  req.maxPrices.requests1k, req.maxPrices.storageGibHour};
    a.attributes = req.attributes;
    a.tty = tty;
    ASSIGN_OR_RETURN(AuctionWin won, runAuction(ctx, *l, id, m, a));
    p = won.provider;
    escrowId = won.escrowId;
    amount = won.deposit;
  } else {
    ASSIGN_OR_RETURN(p, chooseProvider(ctx, *l, f, req, m.name));
    // Default deposit: one hour at peak under this provider's prices, at least 1 MER.
    const Micros hourly =
        publisher::estimateHourlyCost(p.prices, req.cpuMillis, req.memoryBytes, req.storageBytes);
    amount = deposit.value_or(std::max<Micros>(hourly, kMicrosPerToken));
    if (tty)
      std::cerr << "provider  " << p.owner << " (" << p.gatewayUrl << "), est. " << money(hourly)
                << "/h at peak\nescrow    opening with " << money(amount) << "\n";
    // The escrow id is known before the open lands, so sealing runs while the ledger commits.
    ASSIGN_OR_RETURN(uint64_t nonce, l->nextNonce(id.address()));
    escrowId = ledger::escrowIdFor(id.address(), nonce);
    opening = std::async(std::launch::async,
                         [&, nonce] { return openEscrow(ctx, id, p, amount, nonce); });
  }
  ASSIGN_OR_RETURN(crypto::PublicKey nodeKey, crypto::PublicKey::fromHex(p.nodeKey));
  bundle::BundleHeader h;
  h.manifest = m;
  h.escrowId = escrowId;
  h.publisher = id.address();
  h.provider = p.owner;
  h.createdAtMs = wallMs();
  Result<std::string> sealed = [&] {
    ProgressBar bar("sealing", tty);
    return bundle::buildSealedBundle(id, nodeKey, std::move(h),
                                     [&](uint64_t n) { bar.update(n, 0); });
  }();
  if (opening) {
    Result<ledger::TxReceipt> opened = opening->get();
    if (!opened.isOk()) return opened.status().withContext("opening the escrow with " + p.owner);
  }
  // From here on the deposit sits in the escrow: on failure, close it so it is refunded.
  auto refund = [&](const Status& why) {
    auto c = closeEscrow(ctx, escrowId);
    std::string note =
        c.isOk()
            ? "; escrow " + escrowId + " closed, the deposit is refunded after the grace period"
            : "; closing escrow " + escrowId + " failed too (" + c.status().message() +
                  "): close it with `mercato escrow close " + escrowId + "`";
    return Status(why.code(), why.message() + note);
  };
  if (!sealed.isOk()) return refund(sealed.status().withContext("sealing the bundle"));
  if (tty)
    std::cerr << "bundle    " << humanBytes(sealed->size()) << " sealed to " << p.owner << "\n";

  auto gw = publisher::GatewayClient::create(p.gatewayUrl, nodeKey, id);
  if (!gw.isOk()) return refund(gw.status());
  Result<publisher::Receipt> receipt = [&] {
    ProgressBar bar("uploading", tty);
    return (*gw)->deploy(*sealed, {escrowId, p.owner},
                         [&](uint64_t done, uint64_t total) { bar.update(done, total); });
  }();
  if (!receipt.isOk()) return refund(receipt.status());

  DeploymentRecord rec;
  rec.id = receipt->deploymentId;
  rec.name = m.name;
  rec.provider = p.owner;
  rec.gatewayUrl = p.gatewayUrl;
  rec.nodeKey = p.nodeKey;
  rec.escrowId = escrowId;
  rec.urls = receipt->urls;
  for (const auto& c : m.components) rec.components.push_back(c.name);
  rec.createdAtMs = receipt->createdAtMs;
  rec.receipt = publisher::toJson(*receipt);
  Status saved = saveDeploymentRecord(ctx.home(), rec);
  if (!saved.isOk())
    std::cerr << "warning: the deployment runs but was not recorded locally: " << saved.message()
              << "\n";
  std::string text = "deployed '" + m.name + "' as " + rec.id + " on " + p.owner;
  for (const auto& u : rec.urls) text += "\nurl         " + u;
  text += "\nescrow      " + escrowId + " (" + money(amount) + ")";
  text += "\ndeployment: " + rec.id;
  ctx.print({{"receipt", rec.receipt}, {"record", toJson(rec)}}, text);
  return Status::ok();
}

}  // namespace

void addDeployCommands(CLI::App& app, Context& ctx, int& exitCode) {
  static DeployFlags f;
  auto* d = app.add_subcommand("deploy", "Deploy an application manifest on a provider");
  d->add_option("manifest", f.manifestPath, "The application manifest (app.yaml)")->required();
  auto* prov = d->add_option("--provider", f.provider, "Deploy on this provider (owner address)");
  auto* sel = d->add_option("--select", f.select,
                            "How to choose: cheapest (default), latency, manual; with --auction "
                            "cheapest, score, manual");
  sel->excludes(prov);
  auto* auc = d->add_flag("--auction", f.auction,
                          "Put an order on the ledger and let providers bid for it");
  auc->excludes(prov);
  d->add_option("--wait", f.wait, "With --auction: how long to collect bids (default 10s)")
      ->needs(auc);
  d->add_option("--deposit", f.deposit,
                "Initial escrow deposit (default: 1 hour at peak resources, at least 1 MER; "
                "10 MER with --auction)");
  d->add_option("--max-price", f.maxPrice,
                "Price ceilings, e.g. cpu=0.0001,mem=0.00002,egress=0.05,req=0.001,storage=0.0002 "
                "(storage per GiB-hour)");
  d->add_option("--attr", f.attributes, "Required provider attribute KEY=VALUE (repeatable)");
  d->callback([&] {
    Status s = runDeploy(ctx, f);
    if (!s.isOk()) exitCode = ctx.fail(s);
  });
}

}  // namespace mercato::cli
