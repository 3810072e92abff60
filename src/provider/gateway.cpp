// Provider, part 2: the gateway's HTTP routes (docs/protocols.md, "Gateway API"): bundle
// uploads and intake, and the owner-only deployment API.
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

constexpr size_t kMaxChunk = 4u << 20;

std::string randomId() {
  unsigned char raw[12];
  randombytes_buf(raw, sizeof raw);
  return toHex(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

bool validUploadId(const std::string& id) {
  if (id.size() != 24) return false;
  for (char c : id)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

json usageJson(const ledger::Usage& u) { return ledger::toJson(u); }

}  // namespace

void Provider::registerGatewayRoutes(net::Router& router) {
  // Blocking work (intake deploys containers, ledger round trips) runs here, not on I/O threads.
  auto pool = std::make_shared<WorkerPool>(4, 256);
  auto onWorker = [pool](std::shared_ptr<ResponseWriter> w, std::function<HttpResponse()> fn) {
    if (!pool->post([w, fn] { w->send(fn()); }))
      w->send(HttpResponse::error(resourceExhausted("gateway: too many requests queued")));
  };
  const std::string uploads = opts_.dataDir + "/uploads";
  std::error_code ec;
  fs::create_directories(uploads, ec);

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
  router.add("POST", "/gateway/v1/uploads", [this, uploads](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    if (!body->is_object() || !(*body)["size"].is_number_integer() ||
        !(*body)["sha256"].is_string())
      return HttpResponse::error(
          invalidArgument("uploads: expected {\"size\": integer, \"sha256\": hex string}"));
    int64_t size = (*body)["size"].get<int64_t>();
    if (size <= 0 || size > opts_.config.maxBundleBytes)
      return HttpResponse::error(tooLarge("uploads: size " + std::to_string(size) +
                                          " is outside 1.." +
                                          std::to_string(opts_.config.maxBundleBytes)));
    std::string id = randomId();
    std::error_code e;
    fs::create_directories(uploads + "/" + id, e);
    std::ofstream(uploads + "/" + id + "/meta.json")
        << json{{"size", size}, {"sha256", (*body)["sha256"]}}.dump();
    std::ofstream(uploads + "/" + id + "/data", std::ios::binary);
    return HttpResponse::json(201, {{"uploadId", id}, {"offset", 0}, {"maxChunk", kMaxChunk}});
  });
  auto uploadState = [uploads](const std::string& id) -> Result<std::pair<int64_t, json>> {
    if (!validUploadId(id)) return notFound("no upload " + id);
    std::ifstream in(uploads + "/" + id + "/meta.json");
    if (!in) return notFound("no upload " + id);
    json meta = json::parse(in, nullptr, false);
    std::error_code e;
    auto offset = fs::file_size(uploads + "/" + id + "/data", e);
    if (e || meta.is_discarded()) return internalError("upload " + id + " is damaged");
    return std::pair<int64_t, json>{static_cast<int64_t>(offset), meta};
  };
  router.add("GET", "/gateway/v1/uploads/{id}", [uploadState](const HttpRequest& req) {
    auto st = uploadState(req.params.at("id"));
    if (!st.isOk()) return HttpResponse::error(st.status());
    return HttpResponse::json(200, {{"offset", st->first}, {"size", st->second["size"]}});
  });
  router.add("PUT", "/gateway/v1/uploads/{id}", [uploadState, uploads](const HttpRequest& req) {
    const std::string id = req.params.at("id");
    auto st = uploadState(id);
    if (!st.isOk()) return HttpResponse::error(st.status());
    int64_t offset = -1;
    try {
      offset = std::stoll(req.queryParam("offset").value_or("-1"));
    } catch (const std::exception&) {
    }
    if (offset != st->first)
      return HttpResponse::json(
          409, {{"error",
                 {{"code", "failed_precondition"},
                  {"message", "upload " + id + " is at offset " + std::to_string(st->first)}}},
                {"offset", st->first}});
    int64_t size = st->second["size"].get<int64_t>();
    if (req.body.size() > kMaxChunk || offset + static_cast<int64_t>(req.body.size()) > size)
      return HttpResponse::error(tooLarge("upload " + id + ": chunk beyond the declared size"));
    std::ofstream out(uploads + "/" + id + "/data", std::ios::binary | std::ios::app);
    out.write(req.body.data(), static_cast<std::streamsize>(req.body.size()));
    out.flush();
    if (!out) return HttpResponse::error(internalError("upload " + id + ": write failed"));
    return HttpResponse::json(200, {{"offset", offset + static_cast<int64_t>(req.body.size())}});
  });
  router.addAsync(
      "POST", "/gateway/v1/uploads/{id}/deploy",
      [this, onWorker, uploadState, uploads](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        onWorker(w, [this, uploadState, uploads, id = req.params.at("id")] {
          auto st = uploadState(id);
          if (!st.isOk()) return HttpResponse::error(st.status());
          if (st->first != st->second["size"].get<int64_t>())
            return HttpResponse::error(failedPrecondition(
                "upload " + id + " is incomplete: " + std::to_string(st->first) + " of " +
                std::to_string(st->second["size"].get<int64_t>()) + " bytes"));
          std::ifstream in(uploads + "/" + id + "/data", std::ios::binary);
          std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          unsigned char digest[crypto_hash_sha256_BYTES];
          crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()),
                             data.size());
          std::string hex =
              toHex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
          if (hex != st->second["sha256"].get<std::string>())
            return HttpResponse::error(invalidArgument("upload " + id + ": sha256 is " + hex +
                                                       ", not the declared " +
                                                       st->second["sha256"].get<std::string>()));
          auto r = acceptBundle(data);
          std::error_code e;
          fs::remove_all(uploads + "/" + id, e);
          if (!r.isOk()) return HttpResponse::error(r.status());
          return HttpResponse::json(201, *r);
        });
      });

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
  router.addAsync(
      "GET", "/gateway/v1/deployments/{id}/events",
      [this, onWorker, authorize](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        onWorker(w, [this, req, authorize] {
          const auto& id = req.params.at("id");
          auto rec = authorize(req, id, "read");
          if (!rec.isOk()) return HttpResponse::error(rec.status());
          uint64_t after = 0;
          int64_t wait = 0;
          try {
            after = std::stoull(req.queryParam("after").value_or("0"));
            wait = std::min<int64_t>(std::stoll(req.queryParam("wait").value_or("0")), 30'000);
          } catch (const std::exception&) {
            return HttpResponse::error(invalidArgument("events: after and wait are integers"));
          }
          auto evs = opts_.runtime->events(after, 1000, wait);
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
                      auto body = req.jsonBody();
                      if (!body.isOk()) return HttpResponse::error(body.status());
                      runtime::ExecRequest x;
                      x.deployment = id;
                      try {
                        x.service = body->value("service", "");
                        x.args = body->at("args").get<std::vector<std::string>>();
                      } catch (const std::exception&) {
                        return HttpResponse::error(invalidArgument(
                            "exec: expected {\"service\": string, \"args\": [string]}"));
                      }
                      auto r = opts_.runtime->exec(x);
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
        return execSessions_->open(id, std::move(conn));
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
          auto body = req.jsonBody();
          int64_t ttl = 3600;
          std::vector<std::string> ops = {"read"};
          if (body.isOk() && body->is_object()) {
            ttl = body->value("ttlSeconds", ttl);
            if (body->contains("ops") && (*body)["ops"].is_array())
              ops = (*body)["ops"].get<std::vector<std::string>>();
          }
          if (ttl <= 0 || ttl > 30 * 24 * 3600)
            return HttpResponse::error(invalidArgument("macaroons: ttlSeconds outside 1..2592000"));
          std::string token = publisher::mintMacaroon(macaroonSecret_, id,
                                                      opts_.clock->nowMillis() + ttl * 1000, ops);
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
          runtime::LogOptions lo;
          lo.service = req.queryParam("service").value_or("");
          try {
            lo.tail = std::stoul(req.queryParam("tail").value_or("100"));
          } catch (const std::exception&) {
            w->send(HttpResponse::error(invalidArgument("logs: tail must be an integer")));
            return;
          }
          lo.follow = req.queryParam("follow").value_or("") == "1";
          lo.cancelled = [this, w] { return w->closed() || stoppingFlag(); };
          w->beginStream(200, {{"Content-Type", "application/x-ndjson"}});
          Status s = opts_.runtime->logs(req.params.at("id"), lo, [&](const runtime::LogLine& l) {
            json j = {{"instance", l.instance}, {"stream", l.stream}, {"text", l.text}};
            return w->writeChunk(j.dump() + "\n");
          });
          // The 200 is already out: a failure ends the stream with an error line.
          if (!s.isOk())
            (void)w->writeChunk(
                json{{"error", {{"code", codeName(s.code())}, {"message", s.message()}}}}.dump() +
                "\n");
          w->end();
        }).detach();
      });
}

}  // namespace mercato::provider
