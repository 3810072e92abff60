#include "ledger/service.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>

namespace mercato::ledger {

using net::HttpRequest;
using net::HttpResponse;
using net::ResponseWriter;
using nlohmann::json;

namespace {

Result<uint64_t> queryU64(const HttpRequest& req, const std::string& name, uint64_t fallback) {
  auto v = req.queryParam(name);
  if (!v || v->empty()) return fallback;
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size())
    return invalidArgument("query parameter " + name + "='" + *v +
                           "': expected a non-negative integer");
  return out;
}

template <typename T>
HttpResponse reply(const Result<T>& r) {
  if (!r.isOk()) return HttpResponse::error(r.status());
  return HttpResponse::json(200, toJson(*r));
}

template <typename T>
json arrayOf(const std::vector<T>& v) {
  json a = json::array();
  for (const auto& x : v) a.push_back(toJson(x));
  return a;
}

Result<SignedTx> parseTx(const json& j) { return decodeSignedTx(j); }

json errorJson(const Status& s) {
  return {{"error", {{"code", std::string(codeName(s.code()))}, {"message", s.message()}}}};
}

// Streams events to one client: waits for new events, writes them as NDJSON, re-arms.
struct EventStream : std::enable_shared_from_this<EventStream> {
  Ledger& ledger;
  std::shared_ptr<ResponseWriter> writer;
  uint64_t cursor;
  ServiceOptions opts;
  EventStream(Ledger& l, std::shared_ptr<ResponseWriter> w, uint64_t c, ServiceOptions o)
      : ledger(l), writer(std::move(w)), cursor(c), opts(o) {}

  void arm() {
    auto self = shared_from_this();
    ledger.notifyEvents(cursor, opts.streamHeartbeatMs, [self] { self->pump(); });
  }
  void pump() {
    if (writer->closed()) return;
    auto evs = ledger.events(cursor, opts.maxPage, 0);
    if (!evs.isOk()) {
      writer->writeChunk(errorJson(evs.status()).dump() + "\n");
      writer->end();
      return;
    }
    std::string chunk;
    for (const auto& e : *evs) {
      chunk += toJson(e).dump() + "\n";
      cursor = e.seq;
    }
    // An empty line is the heartbeat that lets both ends notice a dead peer.
    if (!writer->writeChunk(chunk.empty() ? "\n" : chunk)) return;
    arm();
  }
};

}  // namespace

void registerLedgerRoutes(net::Router& router, Ledger& ledger, ServiceOptions opts) {
  router.add("GET", "/ledger/v1/info",
             [&ledger](const HttpRequest&) { return reply(ledger.info()); });

  router.addAsync("POST", "/ledger/v1/txs",
                  [&ledger](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
                    auto body = req.jsonBody();
                    if (!body.isOk()) return w->send(HttpResponse::error(body.status()));
                    auto tx = parseTx(*body);
                    if (!tx.isOk()) return w->send(HttpResponse::error(tx.status()));
                    ledger.submit(std::move(*tx), [w](Result<TxReceipt> r) { w->send(reply(r)); });
                  });

  router.addAsync(
      "POST", "/ledger/v1/txs/batch",
      [&ledger, opts](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        auto body = req.jsonBody();
        if (!body.isOk()) return w->send(HttpResponse::error(body.status()));
        if (!body->is_object() || !body->contains("txs") || !(*body)["txs"].is_array())
          return w->send(HttpResponse::error(invalidArgument("body.txs: expected an array")));
        const json& txs = (*body)["txs"];
        if (txs.empty() || txs.size() > opts.maxBatch)
          return w->send(HttpResponse::error(invalidArgument(
              "body.txs: expected 1 to " + std::to_string(opts.maxBatch) + " transactions")));
        struct Batch {
          std::vector<json> results;
          std::atomic<size_t> remaining;
          std::shared_ptr<ResponseWriter> writer;
        };
        auto batch = std::make_shared<Batch>();
        batch->results.resize(txs.size());
        batch->remaining = txs.size();
        batch->writer = w;
        auto finishOne = [batch](size_t i, json result) {
          batch->results[i] = std::move(result);
          if (--batch->remaining == 0)
            batch->writer->send(HttpResponse::json(200, {{"results", batch->results}}));
        };
        for (size_t i = 0; i < txs.size(); ++i) {
          auto tx = parseTx(txs[i]);
          if (!tx.isOk()) {
            finishOne(i, errorJson(tx.status().withContext("txs[" + std::to_string(i) + "]")));
            continue;
          }
          ledger.submit(std::move(*tx), [finishOne, i](Result<TxReceipt> r) {
            finishOne(i, r.isOk() ? json{{"receipt", toJson(*r)}} : errorJson(r.status()));
          });
        }
      });

  router.add("GET", "/ledger/v1/txs", [&ledger, opts](const HttpRequest& req) {
    auto after = queryU64(req, "after", 0);
    auto limit = queryU64(req, "limit", 100);
    if (!after.isOk()) return HttpResponse::error(after.status());
    if (!limit.isOk()) return HttpResponse::error(limit.status());
    auto txs = ledger.transactions(*after, std::min<uint64_t>(*limit, opts.maxPage),
                                   req.queryParam("address").value_or(""));
    if (!txs.isOk()) return HttpResponse::error(txs.status());
    return HttpResponse::json(200, {{"txs", arrayOf(*txs)}});
  });

  router.add("GET", "/ledger/v1/txs/{hash}", [&ledger](const HttpRequest& req) {
    return reply(ledger.transaction(req.params.at("hash")));
  });

  router.add("GET", "/ledger/v1/accounts/{address}", [&ledger](const HttpRequest& req) {
    return reply(ledger.account(req.params.at("address")));
  });

  router.add("GET", "/ledger/v1/providers", [&ledger](const HttpRequest& req) {
    auto ps = ledger.providers(req.queryParam("all").value_or("") == "1");
    if (!ps.isOk()) return HttpResponse::error(ps.status());
    return HttpResponse::json(200, {{"providers", arrayOf(*ps)}});
  });

  router.add("GET", "/ledger/v1/providers/{address}", [&ledger](const HttpRequest& req) {
    return reply(ledger.provider(req.params.at("address")));
  });

  router.add("GET", "/ledger/v1/escrows", [&ledger](const HttpRequest& req) {
    EscrowFilter f;
    f.publisher = req.queryParam("publisher").value_or("");
    f.provider = req.queryParam("provider").value_or("");
    if (auto st = req.queryParam("state"); st && !st->empty()) {
      auto s = parseEscrowState(*st);
      if (!s.isOk()) return HttpResponse::error(s.status());
      f.state = *s;
    }
    auto es = ledger.escrows(f);
    if (!es.isOk()) return HttpResponse::error(es.status());
    return HttpResponse::json(200, {{"escrows", arrayOf(*es)}});
  });

  router.add("GET", "/ledger/v1/escrows/{id}", [&ledger](const HttpRequest& req) {
    return reply(ledger.escrow(req.params.at("id")));
  });

  // Marketplace. Lists take optional filters and ?limit= (default and maximum: maxPage).
  auto limitOf = [opts](const HttpRequest& req) -> Result<size_t> {
    ASSIGN_OR_RETURN(uint64_t n, queryU64(req, "limit", opts.maxPage));
    return static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(n, 1), opts.maxPage));
  };
  router.add("GET", "/ledger/v1/orders", [&ledger, limitOf](const HttpRequest& req) {
    OrderFilter f;
    f.publisher = req.queryParam("publisher").value_or("");
    if (auto st = req.queryParam("state"); st && !st->empty()) {
      auto s = parseOrderState(*st);
      if (!s.isOk()) return HttpResponse::error(s.status());
      f.state = *s;
    }
    auto limit = limitOf(req);
    if (!limit.isOk()) return HttpResponse::error(limit.status());
    f.limit = *limit;
    auto os = ledger.orders(f);
    if (!os.isOk()) return HttpResponse::error(os.status());
    return HttpResponse::json(200, {{"orders", arrayOf(*os)}});
  });
  router.add("GET", "/ledger/v1/orders/{id}", [&ledger](const HttpRequest& req) {
    return reply(ledger.order(req.params.at("id")));
  });
  router.add("GET", "/ledger/v1/bids", [&ledger, limitOf](const HttpRequest& req) {
    BidFilter f;
    f.order = req.queryParam("order").value_or("");
    f.provider = req.queryParam("provider").value_or("");
    if (auto st = req.queryParam("state"); st && !st->empty()) {
      auto s = parseBidState(*st);
      if (!s.isOk()) return HttpResponse::error(s.status());
      f.state = *s;
    }
    auto limit = limitOf(req);
    if (!limit.isOk()) return HttpResponse::error(limit.status());
    f.limit = *limit;
    auto bs = ledger.bids(f);
    if (!bs.isOk()) return HttpResponse::error(bs.status());
    return HttpResponse::json(200, {{"bids", arrayOf(*bs)}});
  });
  router.add("GET", "/ledger/v1/bids/{id}",
             [&ledger](const HttpRequest& req) { return reply(ledger.bid(req.params.at("id"))); });
  router.add("GET", "/ledger/v1/leases", [&ledger, limitOf](const HttpRequest& req) {
    LeaseFilter f;
    f.publisher = req.queryParam("publisher").value_or("");
    f.provider = req.queryParam("provider").value_or("");
    auto limit = limitOf(req);
    if (!limit.isOk()) return HttpResponse::error(limit.status());
    f.limit = *limit;
    auto ls = ledger.leases(f);
    if (!ls.isOk()) return HttpResponse::error(ls.status());
    return HttpResponse::json(200, {{"leases", arrayOf(*ls)}});
  });
  router.add("GET", "/ledger/v1/leases/{id}", [&ledger](const HttpRequest& req) {
    return reply(ledger.lease(req.params.at("id")));
  });
  router.add("GET", "/ledger/v1/providers/{address}/attestations",
             [&ledger](const HttpRequest& req) {
               auto as = ledger.attestations(req.params.at("address"));
               if (!as.isOk()) return HttpResponse::error(as.status());
               return HttpResponse::json(200, {{"attestations", arrayOf(*as)}});
             });

  router.addAsync(
      "GET", "/ledger/v1/events",
      [&ledger, opts](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        auto after = queryU64(req, "after", 0);
        auto limit = queryU64(req, "limit", 100);
        auto wait = queryU64(req, "wait", 0);
        for (const auto* r : {&after, &limit, &wait})
          if (!r->isOk()) return w->send(HttpResponse::error(r->status()));
        const size_t lim = std::min<uint64_t>(std::max<uint64_t>(*limit, 1), opts.maxPage);
        if (req.queryParam("stream").value_or("") == "1") {
          w->beginStream(200, {{"Content-Type", "application/x-ndjson"}});
          auto s = std::make_shared<EventStream>(ledger, w, *after, opts);
          s->pump();
          return;
        }
        auto respond = [&ledger, w, a = *after, lim] {
          auto evs = ledger.events(a, lim, 0);
          if (!evs.isOk()) return w->send(HttpResponse::error(evs.status()));
          uint64_t next = evs->empty() ? a : evs->back().seq;
          w->send(HttpResponse::json(200, {{"events", arrayOf(*evs)}, {"next", next}}));
        };
        const int64_t waitMs = std::min<int64_t>(static_cast<int64_t>(*wait), opts.maxWaitMs);
        if (waitMs <= 0) return respond();
        ledger.notifyEvents(*after, waitMs, respond);
      });
}

}  // namespace mercato::ledger
