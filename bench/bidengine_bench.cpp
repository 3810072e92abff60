// bidengine_bench: the provider bid engine on the embedded ledger in this process (real clock,
// durability as configured: --sync-full is the production default, one fsync per group commit).
//
//   latency:    order creation -> first bid. One engine (scale pricing) follows the ledger; the
//               publisher creates --orders orders one at a time, and for each we measure from
//               just before submitting order.create to the moment bid.create for that order is
//               committed (seen by a long poll on the event log). Also reported: the order's own
//               commit time, so the engine's share is visible.
//   throughput: --throughput-orders open orders exist; an engine starts with no cursor, scans
//               them and evaluates each. "Evaluated" = read the order and our bids on it from the
//               ledger, check attributes/auditors/capacity, reserve, price, and either
//               (mode bid) sign + submit bid.create and wait for its commit, or (mode skip) stop
//               at the decision (the orders ask for an attribute the provider lacks).
// References measured in the same run: serial submitAndWait of transfers from one account (what
// one worker submitting its bids one at a time would reach; the engine's workers pipeline their
// nonces through a ledger::AccountSubmitter), and a plain loop of the same two ledger reads per
// order.
// A step that fails (an engine that does not start or evaluates nothing, a reference whose
// ledger calls fail) exits 1 with the reason and prints no ratio.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "ledger/service.hpp"
#include "market_harness.hpp"
#include "net/server.hpp"

using namespace mercato;
using namespace mercato::provider::bidengine;
using namespace mercato::provider::bidengine::testing;
using Steady = std::chrono::steady_clock;

namespace {

double ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double secs(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

const ledger::Capacity kHuge{1'000'000'000, int64_t{1} << 50, 0};

// Submits `n` order.create from the publisher, pipelined (consecutive nonces, no wait between),
// then waits for all of them.
void createOrders(MarketHarness& m, int n, std::map<std::string, std::string> attrs) {
  uint64_t nonce = m.ledger->nextNonce(m.publisher->address()).value();
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, failed = 0;
  for (int i = 0; i < n; ++i) {
    ledger::OrderCreateBody b;
    b.requirements.resources = {{"app", 100, 128 << 20, 0, 1}};
    b.requirements.attributes = attrs;
    b.deposit = kTok;
    b.ttlMs = 3'600'000;
    m.ledger->submit(ledger::signTx(ledger::Tx{m.chain, ledger::TxKind::kOrderCreate,
                                               m.publisher->address(), nonce++, b},
                                    *m.publisher),
                     [&](Result<ledger::TxReceipt> r) {
                       std::lock_guard l(mu);
                       ++done;
                       failed += !r.isOk();
                       cv.notify_all();
                     });
  }
  std::unique_lock l(mu);
  cv.wait(l, [&] { return done == n; });
  if (failed) throw std::runtime_error(std::to_string(failed) + " orders failed");
}

double serialSubmitRate(ledger::Ledger& l, const std::string& chain, const crypto::Identity& from,
                        const std::string& to, int n) {
  auto t0 = Steady::now();
  for (int i = 0; i < n; ++i) {
    const uint64_t nonce = l.nextNonce(from.address()).value();
    MarketHarness::must(
        l.submitAndWait(ledger::signTx(ledger::Tx{chain, ledger::TxKind::kTransfer, from.address(),
                                                  nonce, ledger::TransferBody{to, 1}},
                                       from)));
  }
  return n / secs(Steady::now() - t0);
}

// --over-http: the harness's ledger behind the /ledger/v1 API on loopback, and the HTTP
// backend a provider node that does not host the ledger uses.
struct HttpFront {
  std::unique_ptr<net::HttpServer> server;
  std::unique_ptr<ledger::Ledger> remote;
};
HttpFront serveOverHttp(ledger::Ledger& l) {
  net::Router router;
  ledger::registerLedgerRoutes(router, l);
  net::ServerOptions so;
  so.maxBodyBytes = 8 << 20;
  HttpFront f;
  f.server = std::move(net::HttpServer::create(so, std::move(router)).value());
  f.server->start();
  ledger::LedgerConfig rc;
  rc.backend = "http";
  rc.url = f.server->url();
  f.remote = std::move(ledger::createLedger(rc).value());
  return f;
}

// Throws on a failed step (MarketHarness::must, .value() of an error, or explicitly).
int runBench(int argc, char** argv) {
  CLI::App app{"bid engine benchmark"};
  int orders = 300, throughputOrders = 10'000, workers = 4;
  bool syncFull = true, overHttp = false;
  std::string dir = "/tmp/mercato-bidengine-bench";
  app.add_option("--orders", orders, "latency: orders created one at a time");
  app.add_option("--throughput-orders", throughputOrders, "throughput: open orders evaluated");
  app.add_option("--workers", workers, "engine worker threads");
  app.add_option("--sync-full", syncFull, "fsync every group commit (production default)");
  app.add_option("--dir", dir, "scratch directory (removed first)");
  app.add_flag("--over-http", overHttp,
               "throughput with bids: the engine reaches the ledger over HTTP on loopback");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::printf("bidengine_bench: sync-full=%d workers=%d over-http=%d\n", syncFull, workers,
              overHttp);

  // ---- latency -------------------------------------------------------------------------------
  {
    MarketHarness m(dir + "/latency", &systemClock(), syncFull);
    m.addProvider(1, kHuge);
    auto cfg = scaleConfig({100, 50, 10'000, 1'000});
    cfg.workers = workers;
    auto engine = BidEngine::create(m.engineOptions(1, kHuge, cfg)).value();
    if (Status st = engine->start(); !st.isOk()) {
      throw std::runtime_error("latency: engine start: " + st.toString());
    }
    std::vector<double> total, orderCommit;
    uint64_t after = m.headEvent();
    for (int i = 0; i < orders; ++i) {
      auto t0 = Steady::now();
      std::string id = m.order(100, 128 << 20);
      auto t1 = Steady::now();
      bool seen = false;
      while (!seen) {
        auto ev = m.ledger->events(after, 64, 2'000);
        if (!ev.isOk() || ev->empty()) {
          std::fprintf(stderr, "no bid within 2 s for order %s\n", id.c_str());
          return 1;
        }
        for (const auto& e : *ev) {
          after = e.seq;
          seen = seen || (e.type == "bid.created" && e.data.value("order", "") == id);
        }
      }
      auto t2 = Steady::now();
      total.push_back(ms(t2 - t0));
      orderCommit.push_back(ms(t1 - t0));
    }
    std::printf(
        "latency over %d orders: order.create -> bid committed p50 %.1f ms p99 %.1f ms "
        "max %.1f ms (order commit alone p50 %.1f ms p99 %.1f ms)\n",
        orders, pct(total, 0.5), pct(total, 0.99), pct(total, 1.0), pct(orderCommit, 0.5),
        pct(orderCommit, 0.99));
    engine->stop();
  }

  // ---- throughput ----------------------------------------------------------------------------
  for (const char* mode : {"skip", "bid"}) {
    const bool bid = std::string(mode) == "bid";
    MarketHarness m(dir + "/throughput-" + mode, &systemClock(), syncFull);
    m.addProvider(1, kHuge, {{"tier", "community"}});
    auto c0 = Steady::now();
    createOrders(m, throughputOrders,
                 bid ? std::map<std::string, std::string>{}
                     : std::map<std::string, std::string>{{"tier", "datacenter"}});
    const double createRate = throughputOrders / secs(Steady::now() - c0);

    // Reference 1: the same two ledger reads per order, in a plain loop on one thread.
    ledger::OrderFilter of;
    of.state = ledger::OrderState::kOpen;
    of.limit = throughputOrders + 10;
    auto open = m.ledger->orders(of).value();
    auto r0 = Steady::now();
    for (const auto& o : open) {
      ledger::BidFilter bf;
      bf.order = o.id;
      bf.provider = m.providers.at(1)->address();
      if (!m.ledger->order(o.id).isOk() || !m.ledger->bids(bf).isOk()) {
        throw std::runtime_error("reference reads failed on order " + o.id);
      }
    }
    const double readRate = open.size() / secs(Steady::now() - r0);

    auto cfg = scaleConfig({100, 50, 10'000, 1'000});
    cfg.workers = workers;
    HttpFront front;
    auto options = m.engineOptions(1, kHuge, cfg);
    if (bid && overHttp) {
      front = serveOverHttp(*m.ledger);
      options.ledger = front.remote.get();
    }
    auto engine = BidEngine::create(std::move(options)).value();
    auto t0 = Steady::now();
    if (Status st = engine->start(); !st.isOk()) {
      throw std::runtime_error(std::string("throughput (") + mode +
                               "): engine start: " + st.toString());
    }
    if (!engine->waitIdle(m.headEvent(), std::chrono::minutes(10))) {
      std::fprintf(stderr, "engine did not finish\n");
      return 1;
    }
    const double took = secs(Steady::now() - t0);
    auto s = engine->status();
    engine->stop();
    const uint64_t evaluated = s.bidsPlaced + [&] {
      uint64_t n = 0;
      for (const auto& [r, c] : s.skipped) n += c;
      return n;
    }();
    if (evaluated == 0 || open.empty()) {
      throw std::runtime_error(std::string("throughput (") + mode +
                               "): " + std::to_string(open.size()) + " open orders, " +
                               std::to_string(evaluated) + " evaluated: nothing to compare");
    }
    const double rate = evaluated / took;
    // Reference 2 (bid mode): one account submitting and waiting, one transaction at a time.
    ledger::Ledger& via = front.remote ? *front.remote : *m.ledger;
    const double serial =
        bid ? serialSubmitRate(via, m.chain, *m.providers.at(1), m.publisher->address(), 500) : 0;
    std::printf(
        "throughput (%s): %llu orders evaluated in %.2f s = %.0f orders/s (bids placed "
        "%llu, skipped %llu); orders created at %.0f/s; reference reads (order + our "
        "bids) %.0f orders/s",
        mode, static_cast<unsigned long long>(evaluated), took, rate,
        static_cast<unsigned long long>(s.bidsPlaced),
        static_cast<unsigned long long>(evaluated - s.bidsPlaced), createRate, readRate);
    if (bid)
      std::printf("; reference serial submitAndWait %.0f tx/s; engine/serial = %.2f", serial,
                  rate / serial);
    else
      std::printf("; engine/reads = %.2f", rate / readRate);
    std::printf("\n");
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return runBench(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bidengine_bench: FAILED, no figures: %s\n", e.what());
    return 1;
  }
}
