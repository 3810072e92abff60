#include "runtime/service.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/json_access.hpp"
#include "common/strings.hpp"
#include "runtime/spec_json.hpp"

namespace mercato::runtime {

using net::HttpRequest;
using net::HttpResponse;
using net::ResponseWriter;
using nlohmann::json;

namespace {

// POST /runtime/v1/deployments/{id}/exec: {"service"?|"instance"?: string, "args": [string],
// "timeoutMs"?: 1..3600000}.
Result<ExecRequest> execRequestFromJson(const json& body, const std::string& id) {
  constexpr std::string_view kWhere = "exec";
  RETURN_IF_ERROR(expectObject(body, kWhere));
  ExecRequest x;
  x.deployment = id;
  ASSIGN_OR_RETURN(x.service, getStringOr(body, kWhere, "service", ""));
  ASSIGN_OR_RETURN(x.instance, getStringOr(body, kWhere, "instance", ""));
  ASSIGN_OR_RETURN(x.args, getStringArray(body, kWhere, "args"));
  if (x.args.empty()) return invalidArgument("exec: args: expected a non-empty array of strings");
  ASSIGN_OR_RETURN(int64_t timeoutMs,
                   getIntInRange(body, kWhere, "timeoutMs", 1, 3'600'000, 30'000));
  x.timeout = std::chrono::milliseconds(timeoutMs);
  return x;
}

}  // namespace

json toJson(const DeploymentStatus& s) {
  json services = json::array();
  for (const auto& svc : s.services) {
    json insts = json::array();
    for (const auto& i : svc.instances) {
      json ports = json::array();
      for (const auto& p : i.ports) ports.push_back({{"port", p.port}, {"protocol", p.protocol}});
      json o = {{"id", i.id},
                {"ordinal", i.ordinal},
                {"state", instanceStateName(i.state)},
                {"ready", i.ready},
                {"ip", i.ip},
                {"ports", ports},
                {"startedAtMs", i.startedAtMs},
                {"finishedAtMs", i.finishedAtMs},
                {"restarts", i.restarts},
                {"oomKilled", i.oomKilled},
                {"message", i.message}};
      if (i.exitCode) o["exitCode"] = *i.exitCode;
      if (i.signal) o["signal"] = *i.signal;
      insts.push_back(std::move(o));
    }
    services.push_back({{"name", svc.name},
                        {"kind", workloadKindName(svc.kind)},
                        {"imageDigest", svc.imageDigest},
                        {"replicas", svc.replicas},
                        {"ready", svc.ready},
                        {"instances", insts}});
  }
  return {{"id", s.id},
          {"owner", s.owner},
          {"state", s.state},
          {"createdAtMs", s.createdAtMs},
          {"services", services}};
}

json toJson(const DeploymentStats& s) {
  json insts = json::array();
  for (const auto& i : s.instances)
    insts.push_back({{"instance", i.instance},
                     {"running", i.running},
                     {"memoryBytes", i.memoryBytes},
                     {"usage", usageToJson(i.usage)}});
  return {{"deployment", s.deployment},
          {"sampledAtMs", s.sampledAtMs},
          {"total", usageToJson(s.total)},
          {"instances", insts}};
}

json toJson(const RuntimeEvent& e) {
  return {{"seq", e.seq},         {"atMs", e.atMs},         {"deployment", e.deployment},
          {"service", e.service}, {"instance", e.instance}, {"type", e.type},
          {"message", e.message}};
}

json toJson(const Capabilities& c) {
  return {{"backend", c.backend},
          {"scaleToZero", c.scaleToZero},
          {"exec", c.exec},
          {"networkIsolation", c.networkIsolation},
          {"gpu", c.gpu},
          {"jobs", c.jobs},
          {"logFollow", c.logFollow}};
}

struct RuntimeService::Impl {
  Runtime& rt;
  std::string token;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  bool stopping = false;
  std::atomic<bool> closing{false};
  std::atomic<int> streams{0};  // log streams in flight, on their own threads
  std::vector<std::thread> threads;
  static constexpr size_t kMaxQueue = 256;

  Impl(Runtime& r, std::string t, int workers) : rt(r), token(std::move(t)) {
    for (int i = 0; i < workers; ++i)
      threads.emplace_back([this] {
        while (true) {
          std::function<void()> job;
          {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return stopping || !queue.empty(); });
            if (queue.empty()) return;
            job = std::move(queue.front());
            queue.pop_front();
          }
          try {
            job();
          } catch (const std::exception& e) {  // never std::terminate the node
            spdlog::error("runtime API: a job threw: {}", e.what());
          }
        }
      });
  }
  ~Impl() {
    closing = true;
    while (streams.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
  }

  bool authorized(const HttpRequest& req) const { return req.hasBearerToken(token); }

  // Runs `fn` on a worker after the auth check; its response is sent from there.
  void post(HttpRequest req, std::shared_ptr<ResponseWriter> w,
            std::function<HttpResponse(const HttpRequest&)> fn) {
    if (!authorized(req)) {
      w->send(HttpResponse::error(401, "unauthenticated",
                                  "runtime API: missing or wrong admin token "
                                  "(Authorization: Bearer <DATA_DIR/admin.token>)"));
      return;
    }
    std::lock_guard lock(mu);
    if (queue.size() >= kMaxQueue) {
      w->send(HttpResponse::error(resourceExhausted("runtime API: too many requests queued")));
      return;
    }
    // A handler that throws answers 500 and is logged; the worker goes on.
    queue.push_back([req = std::move(req), w, fn = std::move(fn)] {
      try {
        w->send(fn(req));
      } catch (const std::exception& e) {
        spdlog::error("runtime API: {} {} threw: {}", req.method, req.path, e.what());
        w->send(HttpResponse::error(internalError("internal error while handling the request")));
      }
    });
    cv.notify_one();
  }
};

RuntimeService::RuntimeService(Runtime& runtime, std::string adminToken, int workers)
    : impl_(std::make_unique<Impl>(runtime, std::move(adminToken), workers)) {}

RuntimeService::~RuntimeService() = default;

void RuntimeService::registerRoutes(net::Router& router) {
  Impl* impl = impl_.get();
  Runtime& rt = impl->rt;
  auto route = [&](const std::string& method, const std::string& pattern,
                   std::function<HttpResponse(const HttpRequest&)> fn) {
    router.addAsync(method, pattern,
                    [impl, fn](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
                      impl->post(std::move(req), std::move(w), fn);
                    });
  };
  auto statusOr = [&rt](const std::string& id, int code) {
    auto st = rt.status(id);
    if (!st.isOk()) return HttpResponse::error(st.status());
    return HttpResponse::json(code, toJson(*st));
  };

  route("GET", "/runtime/v1/capabilities",
        [&rt](const HttpRequest&) { return HttpResponse::json(200, toJson(rt.capabilities())); });
  route("POST", "/runtime/v1/deployments", [&rt, statusOr](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    auto spec = specFromJson(*body);
    if (!spec.isOk()) return HttpResponse::error(spec.status());
    if (Status s = rt.deploy(*spec); !s.isOk()) return HttpResponse::error(s);
    return statusOr(spec->id, 201);
  });
  route("GET", "/runtime/v1/deployments", [&rt](const HttpRequest&) {
    auto all = rt.list();
    if (!all.isOk()) return HttpResponse::error(all.status());
    json a = json::array();
    for (const auto& d : *all) a.push_back(toJson(d));
    return HttpResponse::json(200, a);
  });
  route("GET", "/runtime/v1/deployments/{id}",
        [statusOr](const HttpRequest& req) { return statusOr(req.params.at("id"), 200); });
  route("DELETE", "/runtime/v1/deployments/{id}", [&rt](const HttpRequest& req) {
    if (Status s = rt.remove(req.params.at("id")); !s.isOk()) return HttpResponse::error(s);
    return HttpResponse::json(200, {{"removed", req.params.at("id")}});
  });
  route("POST", "/runtime/v1/deployments/{id}/scale", [&rt, statusOr](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    auto service = getString(*body, "scale", "service");
    if (!service.isOk()) return HttpResponse::error(service.status());
    auto replicas = getInt(*body, "scale", "replicas");
    if (!replicas.isOk()) return HttpResponse::error(replicas.status());
    if (*replicas < 0 || *replicas > 10'000)
      return HttpResponse::error(
          invalidArgument("scale: replicas: expected an integer in 0..10000"));
    Status s = rt.scale(req.params.at("id"), *service, static_cast<int>(*replicas));
    if (!s.isOk()) return HttpResponse::error(s);
    return statusOr(req.params.at("id"), 200);
  });
  route("POST", "/runtime/v1/deployments/{id}/stop", [&rt, statusOr](const HttpRequest& req) {
    if (Status s = rt.stop(req.params.at("id")); !s.isOk()) return HttpResponse::error(s);
    return statusOr(req.params.at("id"), 200);
  });
  route("GET", "/runtime/v1/deployments/{id}/stats", [&rt](const HttpRequest& req) {
    auto st = rt.stats(req.params.at("id"));
    if (!st.isOk()) return HttpResponse::error(st.status());
    return HttpResponse::json(200, toJson(*st));
  });
  route("POST", "/runtime/v1/deployments/{id}/exec", [&rt](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    auto x = execRequestFromJson(*body, req.params.at("id"));
    if (!x.isOk()) return HttpResponse::error(x.status());
    auto r = rt.exec(*x);
    if (!r.isOk()) return HttpResponse::error(r.status());
    return HttpResponse::json(
        200, {{"exitCode", r->exitCode}, {"stdout", r->stdoutText}, {"stderr", r->stderrText}});
  });
  route("GET", "/runtime/v1/events", [&rt](const HttpRequest& req) {
    auto after = parseIntParamOr(req.queryParam("after"), "events", "after", 0, INT64_MAX, 0);
    auto wait = parseIntParamOr(req.queryParam("wait"), "events", "wait", 0, INT64_MAX, 0);
    auto limit = parseIntParamOr(req.queryParam("limit"), "events", "limit", 0, INT64_MAX, 500);
    for (const auto* r : {&after, &wait, &limit})
      if (!r->isOk()) return HttpResponse::error(r->status());
    auto evs = rt.events(static_cast<uint64_t>(*after), std::min<int64_t>(*limit, 5000),
                         std::min<int64_t>(*wait, 30'000));
    if (!evs.isOk()) return HttpResponse::error(evs.status());
    json a = json::array();
    for (const auto& e : *evs) a.push_back(toJson(e));
    return HttpResponse::json(200, a);
  });
  // Logs stream as NDJSON; with follow=1 the worker stays with the stream until the client
  // goes away.
  router.addAsync(
      "GET", "/runtime/v1/deployments/{id}/logs",
      [impl, &rt](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        if (!impl->authorized(req)) {
          w->send(HttpResponse::error(401, "unauthenticated",
                                      "runtime API: missing or wrong admin token"));
          return;
        }
        impl->streams++;
        std::thread([impl, &rt, req = std::move(req), w] {
          struct Done {
            Impl* impl;
            ~Done() { impl->streams--; }
          } done{impl};
          LogOptions lo;
          lo.cancelled = [impl, w] { return impl->closing.load() || w->closed(); };
          lo.service = req.queryParam("service").value_or("");
          lo.instance = req.queryParam("instance").value_or("");
          auto tail = parseIntParamOr(req.queryParam("tail"), "logs", "tail", 0, 100'000, 100);
          if (!tail.isOk()) {
            w->send(HttpResponse::error(tail.status()));
            return;
          }
          lo.tail = static_cast<size_t>(*tail);
          lo.follow = req.queryParam("follow").value_or("") == "1";
          bool begun = false;
          Status s;
          try {  // this detached thread must never end the process
            s = rt.logs(req.params.at("id"), lo, [&](const LogLine& l) {
              if (!begun) {
                w->beginStream(200, {{"Content-Type", "application/x-ndjson"}});
                begun = true;
              }
              // The app's bytes: invalid UTF-8 is replaced, never thrown on.
              json j = {{"instance", l.instance}, {"stream", l.stream}, {"text", l.text}};
              return w->writeChunk(j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n") &&
                     !w->closed();
            });
          } catch (const std::exception& e) {
            spdlog::error("runtime API: log stream threw: {}", e.what());
            s = internalError("internal error while streaming the logs");
          }
          if (!begun) {
            if (!s.isOk()) {
              w->send(HttpResponse::error(s));
              return;
            }
            w->beginStream(200, {{"Content-Type", "application/x-ndjson"}});
          }
          w->end();
        }).detach();
      });
}

Result<std::string> loadOrCreateAdminToken(const std::string& dataDir) {
  std::string path = dataDir + "/admin.token";
  std::ifstream in(path);
  std::string token;
  if (in && std::getline(in, token) && token.size() >= 32) return token;
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  token = toHex(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return internalError("cannot write " + path + ": " + std::strerror(errno));
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fsync(fd);
  ::close(fd);
  if (!ok) return internalError("cannot write " + path);
  return token;
}

}  // namespace mercato::runtime
