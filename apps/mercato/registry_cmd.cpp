// mercato providers list|show|register|update|deregister
// mercato escrow open|deposit|close|show|list|claim
#include "common/money.hpp"
#include "common/units.hpp"
#include "crypto/address.hpp"
#include "mercato/cli.hpp"

namespace mercato::cli {

using nlohmann::json;

namespace {

std::string providerText(const ledger::ProviderRecord& p) {
  std::string attrs;
  for (const auto& [k, v] : p.attributes) attrs += (attrs.empty() ? "" : ", ") + k + "=" + v;
  return "owner       " + p.owner + (p.active ? "" : " (deregistered)") + "\ngateway     " +
         p.gatewayUrl + "\nnode key    " + p.nodeKey + "\ncapacity    cpu " +
         formatCpu(p.capacity.cpu) + ", memory " + formatBytes(p.capacity.memory) + ", storage " +
         formatBytes(p.capacity.storage) + "\nprices      " + priceLine(p.prices) +
         "\nattributes  " + (attrs.empty() ? "-" : attrs) + "\nregistered  " +
         shortTime(p.registeredAt);
}

std::string escrowText(const ledger::Escrow& e) {
  return "escrow      " + e.id + "\nstate       " + escrowStateName(e.state) + "\npublisher   " +
         e.publisher + "\nprovider    " + e.provider + "\ndeposited   " + money(e.deposited) +
         "\nclaimed     " + money(e.claimed) + "\nrefunded    " + money(e.refunded) +
         "\nbalance     " + money(e.balance()) + "\nowed        " + money(e.owed) +
         "\nusage       cpu " + std::to_string(e.usage.cpuMillis) + " ms, mem " +
         std::to_string(e.usage.memMibSeconds) + " MiB-s, egress " +
         std::to_string(e.usage.egressBytes) + " B, " + std::to_string(e.usage.requests) +
         " requests, disk " + std::to_string(e.usage.storageMibSeconds) + " MiB-s\nterms       " +
         priceLine(e.terms) +
         (e.state == ledger::EscrowState::kClosing ? "\ncloses at   " + shortTime(e.closeDeadline)
                                                   : "");
}

struct ProviderFlags {
  std::string gateway, nodeKey, cpu = "0", memory = "0", storage = "0";
  std::string priceCpu = "0", priceMem = "0", priceEgress = "0", priceReq = "0", priceStorage = "0";
  std::vector<std::string> attributes;
};

void addProviderFlags(CLI::App* c, ProviderFlags& f) {
  c->add_option("--gateway", f.gateway, "Gateway URL, e.g. https://host:8443")->required();
  c->add_option("--node-key", f.nodeKey, "Hex Ed25519 node key (default: this key's)");
  c->add_option("--cpu", f.cpu, "CPU capacity, e.g. 8 or 7500m");
  c->add_option("--memory", f.memory, "Memory capacity, e.g. 32Gi");
  c->add_option("--storage", f.storage, "Storage capacity, e.g. 500Gi");
  c->add_option("--price-cpu", f.priceCpu, "Price per CPU-second, e.g. 0.0001");
  c->add_option("--price-mem", f.priceMem, "Price per GiB-second of memory");
  c->add_option("--price-egress", f.priceEgress, "Price per GiB of egress");
  c->add_option("--price-requests", f.priceReq, "Price per 1,000 requests");
  c->add_option("--price-storage", f.priceStorage, "Price per GiB-hour of disk in use");
  c->add_option("--attr", f.attributes, "Attribute KEY=VALUE (repeatable)");
}

Result<ledger::ProviderBody> providerBody(Context& ctx, const ProviderFlags& f) {
  ledger::ProviderBody b;
  b.gatewayUrl = f.gateway;
  if (f.nodeKey.empty()) {
    ASSIGN_OR_RETURN(crypto::Identity id, ctx.loadKey());
    b.nodeKey = id.publicKey().hex();
  } else {
    b.nodeKey = f.nodeKey;
  }
  ASSIGN_OR_RETURN(b.capacity.cpu, parseCpu(f.cpu));
  ASSIGN_OR_RETURN(b.capacity.memory, parseBytes(f.memory));
  ASSIGN_OR_RETURN(b.capacity.storage, parseBytes(f.storage));
  ASSIGN_OR_RETURN(b.prices.cpuSecond, amountArg("--price-cpu", f.priceCpu));
  ASSIGN_OR_RETURN(b.prices.memGibSecond, amountArg("--price-mem", f.priceMem));
  ASSIGN_OR_RETURN(b.prices.egressGib, amountArg("--price-egress", f.priceEgress));
  ASSIGN_OR_RETURN(b.prices.requests1k, amountArg("--price-requests", f.priceReq));
  ASSIGN_OR_RETURN(b.prices.storageGibHour, amountArg("--price-storage", f.priceStorage));
  for (const auto& a : f.attributes) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      return invalidArgument("--attr '" + a + "': expected KEY=VALUE");
    b.attributes[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return b;
}
}  // namespace

void addRegistryCommands(CLI::App& app, Context& ctx, int& exitCode) {
  auto done = [&](const Status& s) {
    if (!s.isOk()) exitCode = ctx.fail(s);
  };

  // ---- providers ----
  auto* pr = app.add_subcommand("providers", "The provider registry");
  pr->require_subcommand(1);
  static bool all = false;
  auto* list = pr->add_subcommand("list", "List registered providers");
  list->add_flag("--all", all, "Include deregistered providers");
  list->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto ps = (*l)->providers(all);
    if (!ps.isOk()) return done(ps.status());
    json arr = json::array();
    Table t({"OWNER", "GATEWAY", "CPU", "MEMORY", "CPU-S PRICE", "GIB-S PRICE", "ACTIVE"});
    for (const auto& p : *ps) {
      arr.push_back(toJson(p));
      t.row({p.owner, p.gatewayUrl, formatCpu(p.capacity.cpu), formatBytes(p.capacity.memory),
             formatAmount(p.prices.cpuSecond), formatAmount(p.prices.memGibSecond),
             p.active ? "yes" : "no"});
    }
    ctx.print(arr, t.render());
  });

  static std::string showAddr;
  auto* show = pr->add_subcommand("show", "Show one provider");
  show->add_option("address", showAddr, "Provider owner address")->required();
  show->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto p = (*l)->provider(showAddr);
    if (!p.isOk()) return done(p.status());
    ctx.print(toJson(*p), providerText(*p));
  });

  static ProviderFlags regFlags, updFlags;
  auto* reg = pr->add_subcommand("register", "Register your key as a provider");
  addProviderFlags(reg, regFlags);
  auto* upd = pr->add_subcommand("update", "Update your provider registration");
  addProviderFlags(upd, updFlags);
  for (auto [cmd, flags, kind] : {std::tuple{reg, &regFlags, ledger::TxKind::kProviderRegister},
                                  std::tuple{upd, &updFlags, ledger::TxKind::kProviderUpdate}}) {
    cmd->callback([&, done, flags, kind] {
      auto b = providerBody(ctx, *flags);
      if (!b.isOk()) return done(b.status());
      auto r = ctx.submit(kind, *b);
      if (!r.isOk()) return done(r.status());
      ctx.print(toJson(*r),
                std::string(kind == ledger::TxKind::kProviderRegister ? "registered" : "updated") +
                    " provider " + r->result.value("provider", "") + "\ntx  " + r->hash);
    });
  }
  pr->add_subcommand("deregister", "Remove your provider registration")->callback([&, done] {
    auto r = ctx.submit(ledger::TxKind::kProviderDeregister, ledger::DeregisterBody{});
    if (!r.isOk()) return done(r.status());
    ctx.print(toJson(*r), "deregistered\ntx  " + r->hash);
  });

  // ---- escrow ----
  auto* es = app.add_subcommand("escrow", "Payment contracts between publishers and providers");
  es->require_subcommand(1);

  static std::string openProvider, openDeposit;
  auto* open = es->add_subcommand("open", "Open an escrow with a provider and deposit into it");
  open->add_option("--provider", openProvider, "Provider owner address")->required();
  open->add_option("--deposit", openDeposit, "Initial deposit, e.g. 50")->required();
  open->callback([&, done] {
    auto d = amountArg("--deposit", openDeposit);
    if (!d.isOk()) return done(d.status());
    if (Status s = crypto::validateAddress(openProvider); !s.isOk())
      return done(invalidArgument("--provider: " + s.message()));
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto p = (*l)->provider(openProvider);
    if (!p.isOk()) return done(p.status());
    auto key = ctx.loadKey();
    if (!key.isOk()) return done(key.status());
    auto r = openEscrow(ctx, *key, *p, *d);
    if (!r.isOk()) return done(r.status());
    const std::string id = r->result.value("escrow", "");
    ctx.print(toJson(*r), "opened escrow " + id + " with " + money(*d) + "\ntx  " + r->hash);
  });

  static std::string depId, depAmount;
  auto* dep = es->add_subcommand("deposit", "Top up an escrow");
  dep->add_option("escrow", depId, "Escrow id")->required();
  dep->add_option("amount", depAmount, "Amount")->required();
  dep->callback([&, done] {
    auto a = amountArg("amount", depAmount);
    if (!a.isOk()) return done(a.status());
    auto r = depositEscrow(ctx, depId, *a);
    if (!r.isOk()) return done(r.status());
    ctx.print(toJson(*r), "deposited " + money(*a) + " into " + depId + " (state " +
                              r->result.value("state", "") + ")\ntx  " + r->hash);
  });

  static std::string closeId;
  auto* cl = es->add_subcommand("close", "Close an escrow; the rest is refunded after the grace");
  cl->add_option("escrow", closeId, "Escrow id")->required();
  cl->callback([&, done] {
    auto r = closeEscrow(ctx, closeId);
    if (!r.isOk()) return done(r.status());
    ctx.print(toJson(*r),
              "escrow " + closeId + " is " + r->result.value("state", "") + "\ntx  " + r->hash);
  });

  static std::string showId;
  auto* sh = es->add_subcommand("show", "Show an escrow");
  sh->add_option("escrow", showId, "Escrow id")->required();
  sh->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto e = (*l)->escrow(showId);
    if (!e.isOk()) return done(e.status());
    ctx.print(toJson(*e), escrowText(*e));
  });

  static std::string lsPublisher, lsProvider;
  auto* ls = es->add_subcommand("list", "List escrows");
  ls->add_option("--publisher", lsPublisher, "Only this publisher's");
  ls->add_option("--provider", lsProvider, "Only this provider's");
  ls->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto all = (*l)->escrows({lsPublisher, lsProvider, std::nullopt});
    if (!all.isOk()) return done(all.status());
    json arr = json::array();
    Table t({"ESCROW", "STATE", "PUBLISHER", "PROVIDER", "DEPOSITED", "CLAIMED", "BALANCE"});
    for (const auto& e : *all) {
      arr.push_back(toJson(e));
      t.row({e.id, escrowStateName(e.state), e.publisher, e.provider, formatAmount(e.deposited),
             formatAmount(e.claimed), formatAmount(e.balance())});
    }
    ctx.print(arr, t.render());
  });

  static std::string claimId;
  static int64_t cpuMs = 0, memMibS = 0, egress = 0, requests = 0, storageMibS = 0;
  auto* claim = es->add_subcommand("claim", "Provider: claim cumulative usage from an escrow");
  claim->add_option("escrow", claimId, "Escrow id")->required();
  claim->add_option("--cpu-ms", cpuMs, "Cumulative CPU-milliseconds");
  claim->add_option("--mem-mib-s", memMibS, "Cumulative MiB-seconds of memory");
  claim->add_option("--egress-bytes", egress, "Cumulative egress bytes");
  claim->add_option("--requests", requests, "Cumulative requests");
  claim->add_option("--storage-mib-s", storageMibS, "Cumulative MiB-seconds of disk in use");
  claim->callback([&, done] {
    ledger::EscrowClaimBody b{claimId, {cpuMs, memMibS, egress, requests, storageMibS}};
    auto r = ctx.submit(ledger::TxKind::kEscrowClaim, b);
    if (!r.isOk()) return done(r.status());
    ctx.print(toJson(*r), "claimed " + money(r->result.value("paid", int64_t{0})) + " from " +
                              claimId + " (state " + r->result.value("state", "") + ")\ntx  " +
                              r->hash);
  });
}

}  // namespace mercato::cli
