// The runtime's local admin API under /runtime/v1, served by a mercatod with the runtime role.
// It is the operator's (and the tests') handle on the cluster backend; publishers reach their
// deployments through the provider gateway instead (a later issue), never through this API.
//
// Every request must carry `Authorization: Bearer <token>`, the node's admin token (a random
// secret in DATA_DIR/admin.token, mode 0600): anything else is 401. Calls that start or stop
// containers run on a small worker pool, never on the HTTP I/O threads.
//
//   POST   /runtime/v1/deployments                 body: DeploymentSpec JSON   -> 201 status
//   GET    /runtime/v1/deployments                 -> [status]
//   GET    /runtime/v1/deployments/{id}            -> status
//   DELETE /runtime/v1/deployments/{id}            -> 200
//   POST   /runtime/v1/deployments/{id}/scale      body: {"service","replicas"} -> status
//   POST   /runtime/v1/deployments/{id}/stop       -> status
//   GET    /runtime/v1/deployments/{id}/stats      -> usage per instance and total
//   GET    /runtime/v1/deployments/{id}/logs?service=&instance=&tail=&follow=1  -> NDJSON
//   POST   /runtime/v1/deployments/{id}/exec       body: {"service"|"instance","args"}
//   GET    /runtime/v1/events?after=N&wait=MS&limit=L
//   GET    /runtime/v1/capabilities
//
// Thread-safety: the routes hold a reference to the Runtime, which must outlive the server.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "net/server.hpp"
#include "runtime/runtime.hpp"

namespace mercato::runtime {

nlohmann::json toJson(const DeploymentStatus& s);
nlohmann::json toJson(const DeploymentStats& s);
nlohmann::json toJson(const RuntimeEvent& e);
nlohmann::json toJson(const Capabilities& c);

class RuntimeService {
 public:
  // `workers` threads run the blocking calls.
  RuntimeService(Runtime& runtime, std::string adminToken, int workers = 4);
  ~RuntimeService();  // joins the workers (stop the HTTP server first)
  void registerRoutes(net::Router& router);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads DATA_DIR/admin.token, creating it (random, mode 0600) when missing.
Result<std::string> loadOrCreateAdminToken(const std::string& dataDir);

}  // namespace mercato::runtime
