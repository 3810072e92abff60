// mercato orders list|show|close, mercato bids list, mercato provider status URL|ADDR, and the
// auction flow behind `mercato deploy --auction` (auction.hpp).

#include <chrono>
#include <iostream>
#include <thread>

#include "common/money.hpp"
#include "common/units.hpp"
#include "mercato/auction.hpp"
#include "net/client.hpp"
#include "publisher/auction.hpp"

namespace mercato::cli {

using nlohmann::json;

namespace {

std::string resourcesLine(const ledger::OrderRequirements& r) {
  std::string out;
  for (const auto& g : r.resources)
    out += (out.empty() ? "" : "; ") + g.name + " " + std::to_string(g.count) + "× (cpu " +
           formatCpu(g.cpu) + ", memory " + formatBytes(g.memory) + ")";
  return out;
}

std::string capsLine(const ledger::PriceCaps& c) {
  std::string out;
  auto add = [&](const char* unit, const std::optional<Micros>& v) {
    if (v) out += (out.empty() ? "" : " ") + formatAmount(*v) + unit;
  };
  add("/cpu-s", c.cpuSecond);
  add("/GiB-s", c.memGibSecond);
  add("/GiB-egress", c.egressGib);
  add("/1k-req", c.requests1k);
  add("/GiB-h-disk", c.storageGibHour);
  return out.empty() ? "any" : out;
}

Table bidTable(const std::vector<publisher::BidOption>& options, bool numbered) {
  std::vector<std::string> header = {"BID", "PROVIDER", "PRICE", "EST. 1H", "RTT"};
  if (numbered) header.insert(header.begin(), "#");
  Table t(header);
  for (size_t i = 0; i < options.size(); ++i) {
    const auto& o = options[i];
    std::vector<std::string> row = {o.bid.id, o.bid.provider, priceLine(o.bid.price),
                                    money(o.hourlyCost),
                                    o.rttMs ? std::to_string(*o.rttMs) + " ms" : "-"};
    if (numbered) row.insert(row.begin(), std::to_string(i + 1));
    t.row(row);
  }
  return t;
}

}  // namespace

Result<AuctionWin> runAuction(Context& ctx, ledger::Ledger& l, const crypto::Identity& id,
                              const manifest::Manifest& m, const AuctionOptions& opts) {
  ASSIGN_OR_RETURN(publisher::AuctionStrategy strategy,
                   publisher::parseAuctionStrategy(opts.select));
  ledger::OrderCreateBody body;
  body.requirements = publisher::orderRequirementsFor(m, opts.attributes);
  body.maxPrice = opts.maxPrice;
  body.deposit = opts.deposit;
  // Long enough to collect bids and accept one; an accepted order is matched, not expired.
  body.ttlMs = opts.waitMs + 60'000;
  ASSIGN_OR_RETURN(auto created, ctx.submitAs(id, ledger::TxKind::kOrderCreate, body));
  AuctionWin win;
  win.order = created.result.value("order", "");
  win.deposit = opts.deposit;
  auto abandon = [&](const Status& why) {
    auto c = ctx.submitAs(id, ledger::TxKind::kOrderClose, ledger::OrderCloseBody{win.order});
    return Status(
        why.code(),
        why.message() +
            (c.isOk() ? "; order " + win.order + " closed, its deposit refunded"
                      : "; closing order " + win.order + " failed too: " + c.status().message()));
  };
  if (opts.tty)
    std::cerr << "order     " << win.order << " (" << resourcesLine(body.requirements)
              << "), collecting bids for " << manifest::formatDurationMs(opts.waitMs) << "\n";

  // Collect bids until the wait ends (polling: bids land in ledger commits, ~ms apart).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.waitMs);
  std::vector<ledger::Bid> bids;
  for (;;) {
    auto got = l.bids({win.order, "", ledger::BidState::kOpen, 1000});
    if (!got.isOk()) return abandon(got.status().withContext("listing bids"));
    if (opts.tty && got->size() != bids.size())
      std::cerr << "\rbids      " << got->size() << " so far   " << std::flush;
    bids = std::move(*got);
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (opts.tty) std::cerr << "\n";
  if (bids.empty())
    return abandon(Status(Code::kNotFound, "no provider bid on order " + win.order + " within " +
                                               manifest::formatDurationMs(opts.waitMs)));

  std::vector<publisher::BidOption> options;
  for (auto& b : bids) {
    auto p = l.provider(b.provider);
    if (!p.isOk() || !p->active) continue;
    publisher::BidOption o;
    o.hourlyCost = publisher::orderHourlyCost(b.price, body.requirements);
    o.bid = std::move(b);
    o.provider = std::move(*p);
    options.push_back(std::move(o));
  }
  if (options.empty())
    return abandon(Status(Code::kNotFound, "every bidder on " + win.order + " has deregistered"));
  if (strategy != publisher::AuctionStrategy::kCheapest) {
    std::vector<ledger::ProviderRecord> ps;
    for (const auto& o : options) ps.push_back(o.provider);
    auto rtts = gatewayRttsMs(ps);
    for (size_t i = 0; i < rtts.size(); ++i) options[i].rttMs = rtts[i];
  }
  publisher::rankBids(options, strategy);
  size_t pick = 0;
  if (strategy == publisher::AuctionStrategy::kManual) {
    auto chosen = askChoice(bidTable(options, true).render(), "accept bid", options.size(),
                            "--select manual needs a terminal to ask on; use cheapest or score");
    if (!chosen.isOk()) return abandon(chosen.status());
    pick = *chosen;
  } else if (opts.tty) {
    std::cerr << bidTable(options, false).render();
  }
  const auto& chosen = options[pick];
  ASSIGN_OR_RETURN(uint64_t nonce, l.nextNonce(id.address()));
  auto lease =
      ctx.submitAs(id, ledger::TxKind::kLeaseCreate, ledger::LeaseCreateBody{chosen.bid.id}, nonce);
  if (!lease.isOk()) return abandon(lease.status().withContext("accepting bid " + chosen.bid.id));
  win.bid = chosen.bid;
  win.provider = chosen.provider;
  win.escrowId = lease->result.value("escrow", ledger::escrowIdFor(id.address(), nonce));
  if (opts.tty)
    std::cerr << "lease     " << win.escrowId << " with " << win.provider.owner << " at "
              << priceLine(win.bid.price) << "\n";
  return win;
}

void addMarketCommands(CLI::App& app, Context& ctx, int& exitCode) {
  auto done = [&](const Status& s) {
    if (!s.isOk()) exitCode = ctx.fail(s);
  };

  // ---- orders ----
  auto* orders = app.add_subcommand("orders", "Marketplace orders (see deploy --auction)");
  orders->require_subcommand(1);
  static bool allOrders = false;
  static std::string orderState;
  auto* ol = orders->add_subcommand("list", "List your orders (newest first)");
  ol->add_flag("--all", allOrders, "Everyone's orders, not only this key's");
  ol->add_option("--state", orderState, "open, matched, closed or expired");
  ol->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    ledger::OrderFilter f;
    if (!allOrders) {
      auto id = ctx.loadKey();
      if (!id.isOk()) return done(id.status());
      f.publisher = id->address();
    }
    if (!orderState.empty()) {
      auto s = ledger::parseOrderState(orderState);
      if (!s.isOk()) return done(s.status().withContext("--state"));
      f.state = *s;
    }
    auto os = (*l)->orders(f);
    if (!os.isOk()) return done(os.status());
    json arr = json::array();
    Table t({"ORDER", "STATE", "RESOURCES", "MAX PRICE", "DEPOSIT", "EXPIRES", "LEASE"});
    for (const auto& o : *os) {
      arr.push_back(toJson(o));
      t.row({o.id, orderStateName(o.state), resourcesLine(o.requirements), capsLine(o.maxPrice),
             money(o.deposit), shortTime(o.expiresAt), o.lease.empty() ? "-" : o.lease});
    }
    ctx.print(arr, t.render());
  });

  static std::string showId;
  auto* os = orders->add_subcommand("show", "Show an order and its bids");
  os->add_option("order", showId, "Order id (ord_…)")->required();
  os->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto o = (*l)->order(showId);
    if (!o.isOk()) return done(o.status());
    auto bs = (*l)->bids({showId, "", std::nullopt, 1000});
    if (!bs.isOk()) return done(bs.status());
    json arr = json::array();
    Table t({"BID", "PROVIDER", "STATE", "PRICE", "EST. 1H"});
    for (const auto& b : *bs) {
      arr.push_back(toJson(b));
      t.row({b.id, b.provider, bidStateName(b.state), priceLine(b.price),
             money(publisher::orderHourlyCost(b.price, o->requirements))});
    }
    std::string attrs;
    for (const auto& [k, v] : o->requirements.attributes)
      attrs += (attrs.empty() ? "" : ", ") + k + "=" + v;
    for (const auto& a : o->requirements.signedBy)
      for (const auto& [k, v] : a.attributes)
        attrs += (attrs.empty() ? "" : ", ") + k + "=" + v + " (signed by " + a.auditor + ")";
    std::string text =
        "order       " + o->id + "\nstate       " + orderStateName(o->state) + "\npublisher   " +
        o->publisher + "\nresources   " + resourcesLine(o->requirements) + "\nattributes  " +
        (attrs.empty() ? "-" : attrs) + "\nmax price   " + capsLine(o->maxPrice) +
        "\ndeposit     " + money(o->deposit) + "\nexpires     " + shortTime(o->expiresAt) +
        (o->lease.empty() ? "" : "\nlease       " + o->lease) + "\n\n" + t.render();
    ctx.print({{"order", toJson(*o)}, {"bids", arr}}, text);
  });

  static std::string closeId;
  auto* oc = orders->add_subcommand("close", "Close an open order; its deposit is refunded");
  oc->add_option("order", closeId, "Order id (ord_…)")->required();
  oc->callback([&, done] {
    auto r = ctx.submit(ledger::TxKind::kOrderClose, ledger::OrderCloseBody{closeId});
    if (!r.isOk()) return done(r.status());
    ctx.print(toJson(*r), "closed order " + closeId + ", refunded " +
                              money(r->result.value("refunded", Micros{0})));
  });

  // ---- bids ----
  auto* bids = app.add_subcommand("bids", "Provider bids on marketplace orders");
  bids->require_subcommand(1);
  static std::string bidOrder, bidProvider, bidState;
  auto* bl = bids->add_subcommand("list", "List bids (newest first)");
  bl->add_option("--order", bidOrder, "Only bids on this order");
  bl->add_option("--provider", bidProvider, "Only bids by this provider");
  bl->add_option("--state", bidState, "open, won, lost, closed or expired");
  bl->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    ledger::BidFilter f{bidOrder, bidProvider, std::nullopt, 1000};
    if (!bidState.empty()) {
      auto s = ledger::parseBidState(bidState);
      if (!s.isOk()) return done(s.status().withContext("--state"));
      f.state = *s;
    }
    auto bs = (*l)->bids(f);
    if (!bs.isOk()) return done(bs.status());
    json arr = json::array();
    Table t({"BID", "ORDER", "PROVIDER", "STATE", "PRICE", "EXPIRES"});
    for (const auto& b : *bs) {
      arr.push_back(toJson(b));
      t.row({b.id, b.order, b.provider, bidStateName(b.state), priceLine(b.price),
             shortTime(b.expiresAt)});
    }
    ctx.print(arr, t.render());
  });

  // ---- provider status ----
  auto* prov = app.add_subcommand("provider", "A provider's own view of itself");
  prov->require_subcommand(1);
  static std::string target;
  static bool insecure = false;
  auto* st =
      prov->add_subcommand("status", "Cluster, bid engine and manifest status of a provider");
  st->add_option("provider", target, "Gateway URL or provider address")->required();
  st->add_flag("--insecure", insecure,
               "Accept any certificate when the URL is not in the registry (no key to pin)");
  st->callback([&, done] {
    std::string url = target;
    net::ClientOptions co = net::ClientOptions::withTimeout(std::chrono::milliseconds(5000));
    auto l = ctx.ledger();
    std::optional<ledger::ProviderRecord> rec;
    if (l.isOk()) {
      if (target.rfind("http", 0) != 0) {
        auto p = (*l)->provider(target);
        if (!p.isOk()) return done(p.status());
        rec = *p;
      } else if (auto all = (*l)->providers(false); all.isOk()) {
        for (const auto& p : *all)
          if (p.gatewayUrl == target) rec = p;
      }
    }
    if (rec) {
      url = rec->gatewayUrl;
      if (auto key = crypto::PublicKey::fromHex(rec->nodeKey); key.isOk()) co.pinnedKey = *key;
    } else if (url.rfind("https://", 0) == 0) {
      if (!insecure)
        return done(notFound("no registered provider has gateway " + url +
                             ", so there is no node key to pin; pass --insecure to skip it"));
      co.insecureSkipVerify = true;
    } else if (target.rfind("http", 0) != 0) {
      return done(invalidArgument("'" + target + "': expected a gateway URL or an address"));
    }
    auto http = net::HttpClient::create(url, co);
    if (!http.isOk()) return done(http.status());
    auto j = (*http)->getJson("/status");
    if (!j.isOk()) return done(j.status().withContext(url + "/status"));
    const json& c = j->value("cluster", json::object());
    const json& b = j->value("bidEngine", json::object());
    const json& mf = j->value("manifests", json::object());
    auto inv = [&](const char* key) {
      const json& x = c.value(key, json::object());
      return "cpu " + formatCpu(x.value("cpu", int64_t{0})) + ", memory " +
             formatBytes(x.value("memory", int64_t{0}));
    };
    std::string text = "provider     " + j->value("provider", std::string()) + "\nleases       " +
                       std::to_string(c.value("activeLeases", 0)) + " active\nallocated    " +
                       inv("allocated") + "\navailable    " + inv("available") + "\nbid engine   " +
                       (b.value("enabled", false)
                            ? std::to_string(b.value("openOrders", 0)) + " open orders seen, " +
                                  std::to_string(b.value("openBids", 0)) + " open bids"
                            : std::string("off")) +
                       "\nmanifests    " + std::to_string(mf.value("received", 0)) + " received, " +
                       std::to_string(mf.value("pending", 0)) + " pending, " +
                       std::to_string(mf.value("active", 0)) + " active";
    ctx.print(*j, text);
  });
}

}  // namespace mercato::cli
