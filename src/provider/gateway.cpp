// Provider, part 2: the gateway's HTTP routes (docs/protocols.md, "Gateway API"): intake and
// the owner-only deployment API. Resumable uploads are in gateway_uploads.cpp.
#include <sodium.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/worker_pool.hpp"
#include "crypto/address.hpp"
#include "manifest/manifest.hpp"
#include "provider/gateway_requests.hpp"
#include "provider/provider.hpp"
#include "publisher/gateway_auth.hpp"
#include "runtime/service.hpp"

namespace mercato::provider {

namespace fs = std::filesystem;
using net::HttpRequest;
using net::HttpResponse;
using net::ResponseWriter;
using nlohmann::json;

namespace {

json usageJson(const ledger::Usage& u) { return ledger::toJson(u); }

}  // namespace

void Provider::registerGatewayRoutes(net::Router& router) {
  // Blocking work (intake deploys containers, ledger round trips) runs here, not on I/O threads.
  auto pool = std::make_shared<WorkerPool>(4, 256);
  GatewayWorker onWorker = [pool](std::shared_ptr<ResponseWriter> w,
                                  std::function<HttpResponse()> fn) {
    // A handler that throws answers 500 and is logged; the worker and the node go on.
    auto job = [w, fn] {
      try {
        w->send(fn());
      } catch (const std::exception& e) {
        spdlog::error("gateway: a request handler threw: {}", e.what());
        w->send(HttpResponse::error(internalError("internal error while handling the request")));
      } catch (...) {
        spdlog::error("gateway: a request handler threw a non-exception");
        w->send(HttpResponse::error(internalError("internal error while handling the request")));
      }
    };
    if (!pool->post(std::move(job)))
      w->send(HttpResponse::error(resourceExhausted("gateway: too many requests queued")));
  };

  router.add("GET", "/healthz", [](const HttpRequest&) {
    return HttpResponse::json(200, {{"status", "ok"}});
  });
  router.add("GET", "/status",
             [this](const HttpRequest&) { return HttpResponse::json(200, statusJson()); });

  // --- intake
  router.addAsync("POST", "/gateway/v1/deployments",
                  [this, onWorker](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
                    onWorker(w, [this, body = std::move(req.body)] {
                      auto r = acceptBundle(body);
                      if (!r.isOk()) return HttpResponse::error(r.status());
                      return HttpResponse::json(201, *r);
                    });
                  });
  registerUploadRoutes(router, onWorker);

  // --- deployment API: only the owner (Mercato-Sig) or a macaroon the owner got from us.
  struct Caller {
    std::string address;
    bool viaMacaroon = false;
  };
  auto authenticate = [this](const HttpRequest& req) -> Result<Caller> {
    std::string h = req.header("Authorization");
    if (h.empty())
      return unauthenticated("missing Authorization (Mercato-Sig or Macaroon; see protocols.md)");
    if (startsWith(h, "Mercato-Sig ")) {
      ASSIGN_OR_RETURN(auto key,
                       publisher::verifyRequestSignature(h, req.method, req.target, req.body,
                                                         opts_.clock->nowMillis()));
      return Caller{crypto::addressFromPublicKey(key), false};
    }
    if (startsWith(h, "Macaroon ")) return Caller{"", true};
    return unauthenticated("Authorization: unknown scheme (expected Mercato-Sig or Macaroon)");
  };
  auto authorize = [this, authenticate](const HttpRequest& req, const std::string& id,
                                        const std::string& op) -> Result<DeploymentRecord> {
    ASSIGN_OR_RETURN(Caller caller, authenticate(req));
    auto rec = store_->deployment(id);
    if (!rec.isOk()) return permissionDenied("deployment " + id + ": not yours");
    if (caller.viaMacaroon) {
      std::string token = req.header("Authorization").substr(9);
      RETURN_IF_ERROR(
          publisher::verifyMacaroon(macaroonSecret_, token, id, op, opts_.clock->nowMillis()));
      return rec;
    }
    if (caller.address != rec->publisher)
      return permissionDenied("deployment " + id + ": not yours");
    return rec;
  };
  auto viewJson = [this](const DeploymentView& v) {
    json j = {{"id", v.record.id},
              {"escrowId", v.record.escrowId},
              {"publisher", v.record.publisher},
              {"state", v.record.state},
              {"reason", v.record.reason},
              {"createdAtMs", v.record.createdAtMs},
              {"urls", v.urls},
              {"metered", usageJson(v.metered)},
              {"claimed", usageJson(v.claimed.claimed)},
              {"claimedAtMs", v.claimed.claimedAtMs}};
    auto m = json::parse(v.record.manifestJson, nullptr, false);
    if (auto parsed = manifest::manifestFromJson(m); parsed.isOk())
      j["manifest"] = manifest::toJson(*parsed, /*redactSecrets=*/true);
    if (v.record.state != "removed")
      if (auto st = opts_.runtime->status(v.record.id); st.isOk())
        j["runtime"] = runtime::toJson(*st);
    auto c = facade_->counters(v.record.id);
    j["traffic"] = {
        {"requests", c.requests}, {"egressBytes", c.egressBytes}, {"inFlight", c.inFlight}};
    return j;
  };
  router.addAsync(
      "GET", "/gateway/v1/deployments",
      [this, onWorker, authenticate, viewJson](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        onWorker(w, [this, req, authenticate, viewJson] {
          auto caller = authenticate(req);
          if (!caller.isOk()) return HttpResponse::error(caller.status());
          if (caller->viaMacaroon)
            return HttpResponse::error(permissionDenied("listing needs the owner's signature"));
          auto vs = views(caller->address);
          if (!vs.isOk()) return HttpResponse::error(vs.status());
          json a = json::array();
          for (const auto& v : *vs) a.push_back(viewJson(v));
          return HttpResponse::json(200, a);
        });
      });
  router.addAsync(
      "GET", "/gateway/v1/deployments/{id}",
      [this, onWorker, authorize, viewJson](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        onWorker(w, [this, req, authorize, viewJson] {
          const auto& id = req.params.at("id");
          auto rec = authorize(req, id, "read");
          if (!rec.isOk()) return HttpResponse::error(rec.status());
          auto v = view(id);
          if (!v.isOk()) return HttpResponse::error(v.status());
          return HttpResponse::json(200, viewJson(*v));
        });
      });
  router.addAsync("GET", "/gateway/v1/deployments/{id}/events",
                  [this, onWorker, authorize](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
                    onWorker(w, [this, req, authorize] {
                      const auto& id = req.params.at("id");
                      auto rec = authorize(req, id, "read");
                      if (!rec.isOk()) return HttpResponse::error(rec.status());
                      auto q = parseEventsQuery(req);
                      if (!q.isOk()) return HttpResponse::error(q.status());
                      auto evs = opts_.runtime->events(q->after, 1000, q->waitMs);
                      if (!evs.isOk()) return HttpResponse::error(evs.status());
                      json a = json::array();
                      for (const auto& e : *evs)
                        if (e.deployment == id) a.push_back(runtime::toJson(e));
                      return HttpResponse::json(200, a);
                    });
                  });
  router.addAsync("POST", "/gateway/v1/deployments/{id}/exec",
                  [this, onWorker, authorize](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
                    onWorker(w, [this, req, authorize] {
                      const auto& id = req.params.at("id");
                      auto rec = authorize(req, id, "exec");
                      if (!rec.isOk()) return HttpResponse::error(rec.status());
                      auto x = parseExecRequest(req.body, id);
                      if (!x.isOk()) return HttpResponse::error(x.status());
                      auto r = opts_.runtime->exec(*x);
                      if (!r.isOk()) return HttpResponse::error(r.status());
                      return HttpResponse::json(200, {{"exitCode", r->exitCode},
                                                      {"stdout", r->stdoutText},
                                                      {"stderr", r->stderrText}});
                    });
                  });
  // Interactive exec: the same path upgraded to a WebSocket (protocols.md, "Interactive exec").
  if (!execSessions_) {
    ExecLimits limits;
    limits.maxSessions = static_cast<size_t>(opts_.config.execMaxSessions);
    limits.idleTimeoutMs = opts_.config.execIdleTimeoutMs;
    limits.maxSessionsPerPublisher = static_cast<size_t>(opts_.config.execMaxSessionsPerPublisher);
    execSessions_ = std::make_unique<ExecSessions>(*opts_.runtime, *opts_.clock, limits);
  }
  router.addWebSocket(
      "/gateway/v1/deployments/{id}/exec",
      [this, authorize](const HttpRequest& req, std::shared_ptr<net::WebSocketConnection> conn)
          -> Result<net::WebSocketCallbacks> {
        const auto& id = req.params.at("id");
        ASSIGN_OR_RETURN(auto rec, authorize(req, id, "exec"));
        if (rec.state != "active")
          return failedPrecondition("deployment " + id + " is " + rec.state);
        return execSessions_->open(id, rec.publisher, std::move(conn));
      });
  router.addAsync(
      "POST", "/gateway/v1/deployments/{id}/macaroons",
      [this, onWorker, authenticate](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        onWorker(w, [this, req, authenticate] {
          const auto& id = req.params.at("id");
          auto caller = authenticate(req);
          if (!caller.isOk()) return HttpResponse::error(caller.status());
          auto rec = store_->deployment(id);
          if (caller->viaMacaroon || !rec.isOk() || rec->publisher != caller->address)
            return HttpResponse::error(permissionDenied("deployment " + id + ": not yours"));
          auto m = parseMacaroonRequest(req.body);
          if (!m.isOk()) return HttpResponse::error(m.status());
          std::string token = publisher::mintMacaroon(
              macaroonSecret_, id, opts_.clock->nowMillis() + m->ttlSeconds * 1000, m->ops);
          return HttpResponse::json(201, {{"macaroon", token}});
        });
      });
  // Logs stream as NDJSON from their own thread while the client stays.
  router.addAsync(
      "GET", "/gateway/v1/deployments/{id}/logs",
      [this, authorize](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        auto rec = authorize(req, req.params.at("id"), "read");
        if (!rec.isOk()) {
          w->send(HttpResponse::error(rec.status()));
          return;
        }
        logStreams_++;
        std::thread([this, req = std::move(req), w] {
          struct Done {
            std::atomic<int>& n;
            ~Done() { n--; }
          } done{logStreams_};
          auto parsed = parseLogsQuery(req);
          if (!parsed.isOk()) {
            w->send(HttpResponse::error(parsed.status()));
            return;
          }
          runtime::LogOptions lo = std::move(parsed).value();
          lo.cancelled = [this, w] { return w->closed() || stoppingFlag(); };
          // Log text is the app's bytes: invalid UTF-8 is replaced, never thrown on.
          const auto line = [](const json& j) {
            return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
          };
          w->beginStream(200, {{"Content-Type", "application/x-ndjson"}});
          Status s;
          try {
            s = opts_.runtime->logs(req.params.at("id"), lo, [&](const runtime::LogLine& l) {
              return w->writeChunk(
                  line({{"instance", l.instance}, {"stream", l.stream}, {"text", l.text}}));
            });
          } catch (const std::exception& e) {  // this thread must not end the process
            spdlog::error("gateway: log stream for {} threw: {}", req.params.at("id"), e.what());
            s = internalError("internal error while streaming the logs");
          }
          // The 200 is already out: a failure ends the stream with an error line.
          if (!s.isOk())
            (void)w->writeChunk(
                line({{"error", {{"code", codeName(s.code())}, {"message", s.message()}}}}));
          w->end();
        }).detach();
      });
}

}  // namespace mercato::provider
