// The /p2p/v1 HTTP API and the blocking views behind it. Every handler runs on the p2p I/O
// thread (posted there from the HTTP threads), so it reads the service state without locks.
#include <sodium.h>

#include <algorithm>
#include <set>

#include "net/server.hpp"
#include "p2p/service_impl.hpp"

namespace mercato::p2p {

namespace {

nlohmann::json knownJson(const KnownNode& k, const Clock& clock) {
  return {{"endpoint", k.addr.endpoint},
          {"rttMicros", k.rttMicros},
          {"lastSeenMs",
           std::chrono::duration_cast<std::chrono::milliseconds>(k.lastSeen.time_since_epoch())
               .count()}};
}

}  // namespace

nlohmann::json P2pService::Impl::identityJsonLocked() const {
  nlohmann::json j = self.toJson();
  j["endpoint"] = transport->localEndpoint();
  return j;
}

nlohmann::json P2pService::Impl::networksJsonLocked() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& c : channels) {
    const Discovery& d = *c->discovery;
    arr.push_back({{"name", c->network().name()},
                   {"id", c->network().id().hex()},
                   {"private", c->network().isPrivate()},
                   {"peers", d.knownCount()},
                   {"thresholdMicros", d.threshold()}});
  }
  return arr;
}

Result<nlohmann::json> P2pService::Impl::peersJsonLocked(
    const std::optional<std::string>& network) const {
  if (network && !const_cast<Impl*>(this)->channelByName(*network))
    return notFound("not in a network named '" + *network + "'");
  struct Row {
    std::string endpoint;
    int64_t rtt = INT64_MAX;
    int64_t lastSeenMs = 0;
    std::vector<std::string> networks;
  };
  std::map<PeerId, Row> rows;
  for (const auto& c : channels) {
    if (network && c->network().name() != *network) continue;
    for (const auto& k : c->discovery->known()) {
      Row& r = rows[k.addr.id];
      if (k.rttMicros < r.rtt) {
        r.rtt = k.rttMicros;
        r.endpoint = k.addr.endpoint;
      }
      r.lastSeenMs = std::max<int64_t>(
          r.lastSeenMs,
          std::chrono::duration_cast<std::chrono::milliseconds>(k.lastSeen.time_since_epoch())
              .count());
      r.networks.push_back(c->network().name());
    }
  }
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& [id, r] : rows) {
    auto rec = records.find(id);
    arr.push_back(
        {{"peerId", id},
         {"name", rec == records.end() ? "" : rec->second.name},
         {"endpoint", r.endpoint},
         {"rttMicros", r.rtt},
         {"lastSeenMs", r.lastSeenMs},
         {"networks", r.networks},
         {"roles", rec == records.end() ? std::vector<std::string>{} : rec->second.roles}});
  }
  std::sort(arr.begin(), arr.end(), [](const auto& a, const auto& b) {
    return a["rttMicros"].template get<int64_t>() < b["rttMicros"].template get<int64_t>();
  });
  return arr;
}

Result<nlohmann::json> P2pService::Impl::nodeJsonLocked(const std::string& peerId) {
  if (Status s = keyFromPeerId(peerId).status(); !s.isOk()) return s;
  if (peerId == selfId) {
    return nlohmann::json{{"peerId", selfId},
                          {"self", true},
                          {"record", identityJsonLocked()},
                          {"summary", localSummary()},
                          {"networks", nlohmann::json::array()}};
  }
  nlohmann::json nets = nlohmann::json::array();
  for (const auto& c : channels) {
    for (const auto& k : c->discovery->known()) {
      if (k.addr.id != peerId) continue;
      nlohmann::json n = knownJson(k, clock);
      n["network"] = c->network().name();
      nets.push_back(std::move(n));
    }
  }
  // Only nodes known in a joined network are shown: a node that left (or a network we left)
  // must not stay visible through the repository.
  if (nets.empty()) return notFound("node " + peerId + " is not known in any joined network");
  nlohmann::json j = {{"peerId", peerId}, {"self", false}, {"networks", nets}};
  auto rec = records.find(peerId);
  j["record"] = rec == records.end() ? nlohmann::json(nullptr) : rec->second.toJson();
  auto pd = peers.find(peerId);
  if (pd != peers.end() && !pd->second.summary.is_null()) {
    j["summary"] = pd->second.summary;
    j["summaryAgeMs"] = clock.nowMillis() - pd->second.summaryAtMs;
  } else {
    j["summary"] = nullptr;
  }
  return j;
}

nlohmann::json P2pService::Impl::statsJsonLocked() const {
  nlohmann::json drops = nlohmann::json::object();
  for (DropReason r : kAllDropReasons)
    drops[std::string(dropReasonName(r))] = transport->dropped(r);
  nlohmann::json nets = nlohmann::json::array();
  for (const auto& c : channels) {
    const DiscoveryStats st = c->discovery->stats();
    nets.push_back({{"name", c->network().name()},
                    {"rounds", st.rounds},
                    {"pingsSent", st.pingsSent},
                    {"pongsReceived", st.pongsReceived},
                    {"unsolicitedPongs", st.unsolicitedPongs},
                    {"discovered", st.discovered},
                    {"pruned", st.pruned},
                    {"lost", st.lost},
                    {"candidates", st.candidates}});
  }
  return {{"accepted", transport->accepted()},   {"sentPackets", transport->sentPackets()},
          {"sentBytes", transport->sentBytes()}, {"dropped", drops},
          {"records", records.size()},           {"networks", nets}};
}

Result<nlohmann::json> P2pService::Impl::setNameLocked(const std::string& name) {
  if (name.empty() || name.size() > 64) return invalidArgument("name: expected 1 to 64 bytes");
  const std::string previous = state.name;
  state.name = name;
  if (Status st = signSelf(); !st.isOk()) {
    state.name = previous;
    return st;
  }
  RETURN_IF_ERROR(persist());
  // Push the new record to every node we know, once.
  std::set<PeerId> told;
  for (const auto& c : channels) {
    for (const auto& k : c->discovery->known()) {
      if (!told.insert(k.addr.id).second) continue;
      Message m;
      m.type = MsgType::kRecord;
      m.record = self.encode();
      send(c->network(), k.addr.endpoint, std::move(m));
    }
  }
  return identityJsonLocked();
}

Result<nlohmann::json> P2pService::Impl::joinLocked(const Network& net) {
  RETURN_IF_ERROR(join(net, true));
  nlohmann::json j = {{"name", net.name()}, {"id", net.id().hex()}, {"private", net.isPrivate()}};
  return j;
}

// ---- blocking API ----

nlohmann::json P2pService::identityJson() {
  if (!impl_->started) return nullptr;
  return impl_->call([this] { return impl_->identityJsonLocked(); });
}

Result<nlohmann::json> P2pService::setName(const std::string& name) {
  if (!impl_->started) return unavailable("p2p is not running");
  return impl_->call([this, &name] { return impl_->setNameLocked(name); });
}

nlohmann::json P2pService::networksJson() {
  if (!impl_->started) return nlohmann::json::array();
  return impl_->call([this] { return impl_->networksJsonLocked(); });
}

Result<nlohmann::json> P2pService::createNetwork(const std::string& name) {
  if (!impl_->started) return unavailable("p2p is not running");
  ASSIGN_OR_RETURN(Network net, Network::createPrivate(name));
  ASSIGN_OR_RETURN(nlohmann::json j, impl_->call([this, &net] { return impl_->joinLocked(net); }));
  j["key"] = net.keyText();
  return j;
}

Result<nlohmann::json> P2pService::joinNetwork(const std::string& keyText) {
  if (!impl_->started) return unavailable("p2p is not running");
  ASSIGN_OR_RETURN(Network net, Network::fromKeyText(keyText));
  return impl_->call([this, &net] { return impl_->joinLocked(net); });
}

Status P2pService::leaveNetwork(const std::string& name) {
  if (!impl_->started) return unavailable("p2p is not running");
  return impl_->call([this, &name] { return impl_->leave(name); });
}

Result<nlohmann::json> P2pService::peersJson(const std::optional<std::string>& network) {
  if (!impl_->started) return unavailable("p2p is not running");
  return impl_->call([this, &network] { return impl_->peersJsonLocked(network); });
}

Result<nlohmann::json> P2pService::nodeJson(const std::string& peerId) {
  if (!impl_->started) return unavailable("p2p is not running");
  return impl_->call([this, &peerId] { return impl_->nodeJsonLocked(peerId); });
}

nlohmann::json P2pService::statsJson() {
  if (!impl_->started) return nullptr;
  return impl_->call([this] { return impl_->statsJsonLocked(); });
}

// ---- HTTP ----

void P2pService::registerRoutes(net::Router& router, const std::string& adminToken) {
  using net::HttpRequest;
  using net::HttpResponse;
  using net::ResponseWriter;
  using Fn = std::function<HttpResponse(const HttpRequest&)>;
  Impl* s = impl_.get();
  auto authorized = [adminToken](const HttpRequest& req) {
    return adminToken.empty() || req.hasBearerToken(adminToken);
  };
  // Runs `fn` on the p2p thread; `admin` routes need the node's admin token.
  auto route = [&router, s, authorized](const std::string& method, const std::string& pattern,
                                        bool admin, Fn fn) {
    router.addAsync(method, pattern,
                    [s, authorized, admin, fn](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
                      if (admin && !authorized(req)) {
                        w->send(HttpResponse::error(unauthenticated(
                            "p2p admin API: missing or wrong admin token (Authorization: "
                            "Bearer <DATA_DIR/admin.token>)")));
                        return;
                      }
                      if (!s->started) {
                        w->send(HttpResponse::error(unavailable("p2p is not running")));
                        return;
                      }
                      s->transport->post([fn, req = std::move(req), w] { w->send(fn(req)); });
                    });
  };
  auto reply = [](const Result<nlohmann::json>& r, int ok = 200) {
    return r.isOk() ? HttpResponse::json(ok, *r) : HttpResponse::error(r.status());
  };

  route("GET", "/p2p/v1/identity", false,
        [s](const HttpRequest&) { return HttpResponse::json(200, s->identityJsonLocked()); });
  route("POST", "/p2p/v1/identity", true, [s, reply](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    if (!body->is_object() || !body->contains("name") || !(*body)["name"].is_string())
      return HttpResponse::error(invalidArgument("body: expected {\"name\": \"...\"}"));
    return reply(s->setNameLocked((*body)["name"].get<std::string>()));
  });
  route("GET", "/p2p/v1/networks", false,
        [s](const HttpRequest&) { return HttpResponse::json(200, s->networksJsonLocked()); });
  route("POST", "/p2p/v1/networks", true, [s, reply](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    if (!body->is_object()) return HttpResponse::error(invalidArgument("body: expected an object"));
    const bool byKey = body->contains("key");
    const auto& field = byKey ? (*body)["key"] : (*body)["name"];
    if (!field.is_string())
      return HttpResponse::error(
          invalidArgument("body: expected {\"name\": \"NAME\"} or {\"key\": \"mnet1...\"}"));
    const std::string text = field.get<std::string>();
    Result<Network> net = byKey                        ? Network::fromKeyText(text)
                          : text == kPublicNetworkName ? Result<Network>(Network::publicNetwork())
                                                       : Network::createPrivate(text);
    if (!net.isOk()) return HttpResponse::error(net.status());
    auto j = s->joinLocked(*net);
    if (j.isOk() && !byKey && net->isPrivate()) (*j)["key"] = net->keyText();
    return reply(j, 201);
  });
  route("DELETE", "/p2p/v1/networks/{name}", true, [s](const HttpRequest& req) {
    if (Status st = s->leave(req.params.at("name")); !st.isOk()) return HttpResponse::error(st);
    return HttpResponse::json(200, {{"left", req.params.at("name")}});
  });
  route("GET", "/p2p/v1/peers", false, [s, reply](const HttpRequest& req) {
    return reply(s->peersJsonLocked(req.queryParam("network")));
  });
  route("GET", "/p2p/v1/nodes/{id}", false, [s, reply](const HttpRequest& req) {
    return reply(s->nodeJsonLocked(req.params.at("id")));
  });
  route("GET", "/p2p/v1/stats", false,
        [s](const HttpRequest&) { return HttpResponse::json(200, s->statsJsonLocked()); });
}

}  // namespace mercato::p2p
