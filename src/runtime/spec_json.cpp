#include "runtime/spec_json.hpp"

namespace mercato::runtime {

using nlohmann::json;

json specToJson(const DeploymentSpec& spec, bool redact) {
  json services = json::array();
  for (const auto& s : spec.services) {
    json env = json::array();
    for (const auto& e : s.env)
      env.push_back({{"name", e.name},
                     {"value", redact && e.secret ? std::string("***") : e.value},
                     {"secret", e.secret}});
    json ports = json::array();
    for (const auto& p : s.ports)
      ports.push_back({{"port", p.port}, {"protocol", p.protocol}, {"name", p.name}});
    json o = {{"name", s.name},
              {"kind", workloadKindName(s.kind)},
              {"image", s.image},
              {"imageLayout", s.imageLayout},
              {"command", s.command},
              {"args", s.args},
              {"env", env},
              {"workingDir", s.workingDir},
              {"user", s.user},
              {"resources",
               {{"cpuMillis", s.resources.cpuMillis},
                {"memoryBytes", s.resources.memoryBytes},
                {"pids", s.resources.pids},
                {"storageBytes", s.resources.storageBytes}}},
              {"ports", ports},
              {"replicas", s.replicas},
              {"readOnlyRootfs", s.readOnlyRootfs}};
    if (s.restart) o["restart"] = restartPolicyName(*s.restart);
    services.push_back(std::move(o));
  }
  return {{"id", spec.id}, {"owner", spec.owner}, {"services", services}, {"labels", spec.labels}};
}

namespace {

struct Reader {
  std::string path;
  Status error;

  template <typename T>
  bool get(const json& o, const char* key, T& out, bool required = false) {
    if (!error.isOk()) return false;
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) {
      if (required) error = invalidArgument(path + "." + key + ": required");
      return false;
    }
    try {
      out = it->get<T>();
      return true;
    } catch (const std::exception&) {
      error = invalidArgument(path + "." + key + ": wrong type (" + it->type_name() + ")");
      return false;
    }
  }
};

}  // namespace

Result<DeploymentSpec> specFromJson(const json& j) {
  if (!j.is_object()) return invalidArgument("deployment spec: expected an object");
  DeploymentSpec spec;
  Reader r{"spec", Status()};
  r.get(j, "id", spec.id, true);
  r.get(j, "owner", spec.owner);
  r.get(j, "labels", spec.labels);
  RETURN_IF_ERROR(r.error);
  auto svcs = j.find("services");
  if (svcs == j.end() || !svcs->is_array())
    return invalidArgument("spec.services: expected an array");
  for (size_t i = 0; i < svcs->size(); ++i) {
    const json& o = (*svcs)[i];
    Reader s{"spec.services[" + std::to_string(i) + "]", Status()};
    if (!o.is_object()) return invalidArgument(s.path + ": expected an object");
    ServiceSpec svc;
    std::string kind = "service", restart;
    s.get(o, "name", svc.name, true);
    s.get(o, "kind", kind);
    s.get(o, "image", svc.image, true);
    s.get(o, "imageLayout", svc.imageLayout);
    s.get(o, "command", svc.command);
    s.get(o, "args", svc.args);
    s.get(o, "workingDir", svc.workingDir);
    s.get(o, "user", svc.user);
    s.get(o, "replicas", svc.replicas);
    s.get(o, "readOnlyRootfs", svc.readOnlyRootfs);
    bool hasRestart = s.get(o, "restart", restart);
    RETURN_IF_ERROR(s.error);
    if (kind == "service") {
      svc.kind = WorkloadKind::kService;
    } else if (kind == "job") {
      svc.kind = WorkloadKind::kJob;
    } else {
      return invalidArgument(s.path + ".kind: '" + kind + "' (expected service or job)");
    }
    if (hasRestart) {
      if (restart == "always")
        svc.restart = RestartPolicy::kAlways;
      else if (restart == "on-failure")
        svc.restart = RestartPolicy::kOnFailure;
      else if (restart == "never")
        svc.restart = RestartPolicy::kNever;
      else
        return invalidArgument(s.path + ".restart: '" + restart +
                               "' (expected always, on-failure or never)");
    }
    if (auto res = o.find("resources"); res != o.end() && res->is_object()) {
      Reader rr{s.path + ".resources", Status()};
      rr.get(*res, "cpuMillis", svc.resources.cpuMillis);
      rr.get(*res, "memoryBytes", svc.resources.memoryBytes);
      rr.get(*res, "pids", svc.resources.pids);
      rr.get(*res, "storageBytes", svc.resources.storageBytes);
      RETURN_IF_ERROR(rr.error);
    }
    if (auto env = o.find("env"); env != o.end() && env->is_array()) {
      for (size_t k = 0; k < env->size(); ++k) {
        Reader er{s.path + ".env[" + std::to_string(k) + "]", Status()};
        EnvVar e;
        er.get((*env)[k], "name", e.name, true);
        er.get((*env)[k], "value", e.value);
        er.get((*env)[k], "secret", e.secret);
        RETURN_IF_ERROR(er.error);
        svc.env.push_back(std::move(e));
      }
    }
    if (auto ports = o.find("ports"); ports != o.end() && ports->is_array()) {
      for (size_t k = 0; k < ports->size(); ++k) {
        Reader pr{s.path + ".ports[" + std::to_string(k) + "]", Status()};
        PortSpec p;
        int port = 0;
        pr.get((*ports)[k], "port", port, true);
        pr.get((*ports)[k], "protocol", p.protocol);
        pr.get((*ports)[k], "name", p.name);
        RETURN_IF_ERROR(pr.error);
        if (port <= 0 || port > 65535)
          return invalidArgument(pr.path + ".port: " + std::to_string(port) +
                                 " is outside 1..65535");
        p.port = static_cast<uint16_t>(port);
        svc.ports.push_back(std::move(p));
      }
    }
    spec.services.push_back(std::move(svc));
  }
  return spec;
}

nlohmann::json usageToJson(const Usage& u) {
  return {{"cpuSeconds", u.cpuSeconds},
          {"memoryGiBSeconds", u.memoryGiBSeconds},
          {"memoryPeakBytes", u.memoryPeakBytes},
          {"netRxBytes", u.netRxBytes},
          {"netTxBytes", u.netTxBytes},
          {"pids", u.pids},
          {"storageGiBSeconds", u.storageGiBSeconds},
          {"storageBytes", u.storageBytes}};
}

Usage usageFromJson(const nlohmann::json& j) {
  Usage u;
  if (!j.is_object()) return u;
  auto num = [&](const char* key, auto fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<decltype(fallback)>() : fallback;
  };
  u.cpuSeconds = num("cpuSeconds", 0.0);
  u.memoryGiBSeconds = num("memoryGiBSeconds", 0.0);
  u.memoryPeakBytes = num("memoryPeakBytes", int64_t{0});
  u.netRxBytes = num("netRxBytes", int64_t{0});
  u.netTxBytes = num("netTxBytes", int64_t{0});
  u.pids = num("pids", int64_t{0});
  u.storageGiBSeconds = num("storageGiBSeconds", 0.0);
  u.storageBytes = num("storageBytes", int64_t{0});
  return u;
}

}  // namespace mercato::runtime
