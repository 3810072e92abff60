#include "runtime/runc/state_store.hpp"

#include "common/catching.hpp"
#include "runtime/spec_json.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

namespace mercato::runtime::runc {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS deployments (
  id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, subnet TEXT NOT NULL,
  bridge TEXT NOT NULL, created_ms INTEGER NOT NULL, id_base INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY, deployment TEXT NOT NULL, service TEXT NOT NULL, ordinal INTEGER NOT NULL,
  generation INTEGER NOT NULL, container_id TEXT NOT NULL, state TEXT NOT NULL, ip TEXT NOT NULL,
  host_veth TEXT NOT NULL, dir TEXT NOT NULL, image_digest TEXT NOT NULL,
  started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL, exit_code INTEGER, signal INTEGER,
  oom_killed INTEGER NOT NULL, restarts INTEGER NOT NULL, failures INTEGER NOT NULL,
  next_start_ms INTEGER NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS instances_by_deployment ON instances(deployment);
CREATE TABLE IF NOT EXISTS usage (
  instance TEXT PRIMARY KEY, deployment TEXT NOT NULL, closed TEXT NOT NULL,
  current TEXT NOT NULL, last_memory INTEGER NOT NULL, last_sample_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS usage_by_deployment ON usage(deployment);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, deployment TEXT NOT NULL,
  service TEXT NOT NULL, instance TEXT NOT NULL, type TEXT NOT NULL, message TEXT NOT NULL);
)sql";

InstanceRow instanceFrom(SQLite::Statement& q) {
  InstanceRow r;
  r.id = q.getColumn(0).getString();
  r.deployment = q.getColumn(1).getString();
  r.service = q.getColumn(2).getString();
  r.ordinal = q.getColumn(3).getInt();
  r.generation = q.getColumn(4).getInt();
  r.containerId = q.getColumn(5).getString();
  r.state = q.getColumn(6).getString();
  r.ip = q.getColumn(7).getString();
  r.hostVeth = q.getColumn(8).getString();
  r.dir = q.getColumn(9).getString();
  r.imageDigest = q.getColumn(10).getString();
  r.startedAtMs = q.getColumn(11).getInt64();
  r.finishedAtMs = q.getColumn(12).getInt64();
  if (!q.getColumn(13).isNull()) r.exitCode = q.getColumn(13).getInt();
  if (!q.getColumn(14).isNull()) r.signal = q.getColumn(14).getInt();
  r.oomKilled = q.getColumn(15).getInt() != 0;
  r.restarts = q.getColumn(16).getInt();
  r.consecutiveFailures = q.getColumn(17).getInt();
  r.nextStartMs = q.getColumn(18).getInt64();
  r.message = q.getColumn(19).getString();
  return r;
}

constexpr const char* kInstanceColumns =
    "id, deployment, service, ordinal, generation, container_id, state, ip, host_veth, dir, "
    "image_digest, started_ms, finished_ms, exit_code, signal, oom_killed, restarts, failures, "
    "next_start_ms, message";

template <typename F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  return catchingExceptions("runtime state db", what, std::forward<F>(f));
}

}  // namespace

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& path) {
  try {
    auto db =
        std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ::chmod(path.c_str(), 0600);
    db->exec("PRAGMA journal_mode=WAL");
    db->exec("PRAGMA synchronous=NORMAL");
    db->exec("PRAGMA busy_timeout=5000");
    db->exec(kSchema);
    // Databases from before user namespaces lack the id range column.
    bool hasIdBase = false;
    {
      SQLite::Statement cols(*db, "PRAGMA table_info(deployments)");
      while (cols.executeStep())
        if (cols.getColumn(1).getString() == "id_base") hasIdBase = true;
    }
    if (!hasIdBase)
      db->exec("ALTER TABLE deployments ADD COLUMN id_base INTEGER NOT NULL DEFAULT 0");
    return std::unique_ptr<StateStore>(new StateStore(std::move(db)));
  } catch (const std::exception& e) {
    return internalError("opening runtime state " + path + ": " + e.what());
  }
}

Status StateStore::putDeployment(const DeploymentRow& r) {
  std::lock_guard lock(mu_);
  return guarded("put deployment", [&]() -> Status {
    SQLite::Statement q(
        *db_,
        "INSERT OR REPLACE INTO deployments(id, spec, state, subnet, bridge, created_ms, id_base) "
        "VALUES (?,?,?,?,?,?,?)");
    q.bind(1, r.id);
    q.bind(2, r.specJson);
    q.bind(3, r.state);
    q.bind(4, r.subnet);
    q.bind(5, r.bridge);
    q.bind(6, r.createdAtMs);
    q.bind(7, static_cast<int64_t>(r.idBase));
    q.exec();
    return Status();
  });
}

namespace {
constexpr const char* kDeploymentSelect =
    "SELECT id, spec, state, subnet, bridge, created_ms, id_base FROM deployments";
DeploymentRow deploymentFrom(SQLite::Statement& q) {
  DeploymentRow r;
  r.id = q.getColumn(0).getString();
  r.specJson = q.getColumn(1).getString();
  r.state = q.getColumn(2).getString();
  r.subnet = q.getColumn(3).getString();
  r.bridge = q.getColumn(4).getString();
  r.createdAtMs = q.getColumn(5).getInt64();
  r.idBase = static_cast<uint32_t>(q.getColumn(6).getInt64());
  return r;
}
}  // namespace

Result<DeploymentRow> StateStore::deployment(const std::string& id) {
  std::lock_guard lock(mu_);
  return guarded("get deployment", [&]() -> Result<DeploymentRow> {
    SQLite::Statement q(*db_, std::string(kDeploymentSelect) + " WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return notFound("no deployment " + id);
    return deploymentFrom(q);
  });
}

Result<std::vector<DeploymentRow>> StateStore::deployments() {
  std::lock_guard lock(mu_);
  return guarded("list deployments", [&]() -> Result<std::vector<DeploymentRow>> {
    std::vector<DeploymentRow> out;
    SQLite::Statement q(*db_, std::string(kDeploymentSelect) + " ORDER BY created_ms, id");
    while (q.executeStep()) out.push_back(deploymentFrom(q));
    return out;
  });
}

Status StateStore::deleteDeployment(const std::string& id) {
  std::lock_guard lock(mu_);
  return guarded("delete deployment", [&]() -> Status {
    SQLite::Statement q(*db_, "DELETE FROM deployments WHERE id = ?");
    q.bind(1, id);
    q.exec();
    return Status();
  });
}

Result<std::vector<std::string>> StateStore::usedSubnets() {
  std::lock_guard lock(mu_);
  return guarded("subnets", [&]() -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    SQLite::Statement q(*db_, "SELECT subnet FROM deployments");
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

Status StateStore::putInstance(const InstanceRow& r) {
  std::lock_guard lock(mu_);
  return guarded("put instance", [&]() -> Status {
    SQLite::Statement q(*db_, std::string("INSERT OR REPLACE INTO instances (") + kInstanceColumns +
                                  ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    int i = 1;
    q.bind(i++, r.id);
    q.bind(i++, r.deployment);
    q.bind(i++, r.service);
    q.bind(i++, r.ordinal);
    q.bind(i++, r.generation);
    q.bind(i++, r.containerId);
    q.bind(i++, r.state);
    q.bind(i++, r.ip);
    q.bind(i++, r.hostVeth);
    q.bind(i++, r.dir);
    q.bind(i++, r.imageDigest);
    q.bind(i++, r.startedAtMs);
    q.bind(i++, r.finishedAtMs);
    if (r.exitCode)
      q.bind(i++, *r.exitCode);
    else
      q.bind(i++);
    if (r.signal)
      q.bind(i++, *r.signal);
    else
      q.bind(i++);
    q.bind(i++, r.oomKilled ? 1 : 0);
    q.bind(i++, r.restarts);
    q.bind(i++, r.consecutiveFailures);
    q.bind(i++, r.nextStartMs);
    q.bind(i++, r.message);
    q.exec();
    return Status();
  });
}

Result<std::vector<InstanceRow>> StateStore::instances(const std::string& deployment) {
  std::lock_guard lock(mu_);
  return guarded("list instances", [&]() -> Result<std::vector<InstanceRow>> {
    std::vector<InstanceRow> out;
    std::string sql = std::string("SELECT ") + kInstanceColumns + " FROM instances";
    if (!deployment.empty()) sql += " WHERE deployment = ?";
    sql += " ORDER BY deployment, service, ordinal";
    SQLite::Statement q(*db_, sql);
    if (!deployment.empty()) q.bind(1, deployment);
    while (q.executeStep()) out.push_back(instanceFrom(q));
    return out;
  });
}

Status StateStore::deleteInstance(const std::string& id) {
  std::lock_guard lock(mu_);
  return guarded("delete instance", [&]() -> Status {
    SQLite::Statement q(*db_, "DELETE FROM instances WHERE id = ?");
    q.bind(1, id);
    q.exec();
    return Status();
  });
}

Status StateStore::putUsage(const UsageRow& r) {
  std::lock_guard lock(mu_);
  return guarded("put usage", [&]() -> Status {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO usage VALUES (?,?,?,?,?,?)");
    q.bind(1, r.instance);
    q.bind(2, r.deployment);
    q.bind(3, usageToJson(r.closed).dump());
    q.bind(4, usageToJson(r.current).dump());
    q.bind(5, r.lastMemoryBytes);
    q.bind(6, r.lastSampleMs);
    q.exec();
    return Status();
  });
}

namespace {
UsageRow usageRowFrom(SQLite::Statement& q) {
  UsageRow r;
  r.instance = q.getColumn(0).getString();
  r.deployment = q.getColumn(1).getString();
  r.closed = usageFromJson(nlohmann::json::parse(q.getColumn(2).getString(), nullptr, false));
  r.current = usageFromJson(nlohmann::json::parse(q.getColumn(3).getString(), nullptr, false));
  r.lastMemoryBytes = q.getColumn(4).getInt64();
  r.lastSampleMs = q.getColumn(5).getInt64();
  return r;
}
}  // namespace

Result<std::optional<UsageRow>> StateStore::usage(const std::string& instance) {
  std::lock_guard lock(mu_);
  return guarded("get usage", [&]() -> Result<std::optional<UsageRow>> {
    SQLite::Statement q(*db_, "SELECT * FROM usage WHERE instance = ?");
    q.bind(1, instance);
    if (!q.executeStep()) return std::optional<UsageRow>();
    return std::optional<UsageRow>(usageRowFrom(q));
  });
}

Result<std::vector<UsageRow>> StateStore::usageOfDeployment(const std::string& deployment) {
  std::lock_guard lock(mu_);
  return guarded("deployment usage", [&]() -> Result<std::vector<UsageRow>> {
    std::vector<UsageRow> out;
    SQLite::Statement q(*db_, "SELECT * FROM usage WHERE deployment = ? ORDER BY instance");
    q.bind(1, deployment);
    while (q.executeStep()) out.push_back(usageRowFrom(q));
    return out;
  });
}

Result<uint64_t> StateStore::appendEvent(RuntimeEvent& e) {
  std::lock_guard lock(mu_);
  return guarded("append event", [&]() -> Result<uint64_t> {
    SQLite::Statement q(*db_,
                        "INSERT INTO events (at_ms, deployment, service, instance, type, message) "
                        "VALUES (?,?,?,?,?,?)");
    q.bind(1, e.atMs);
    q.bind(2, e.deployment);
    q.bind(3, e.service);
    q.bind(4, e.instance);
    q.bind(5, e.type);
    q.bind(6, e.message);
    q.exec();
    e.seq = static_cast<uint64_t>(db_->getLastInsertRowid());
    return e.seq;
  });
}

Result<std::vector<RuntimeEvent>> StateStore::events(uint64_t after, size_t limit) {
  std::lock_guard lock(mu_);
  return guarded("read events", [&]() -> Result<std::vector<RuntimeEvent>> {
    std::vector<RuntimeEvent> out;
    SQLite::Statement q(*db_, "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?");
    q.bind(1, static_cast<int64_t>(after));
    q.bind(2, static_cast<int64_t>(limit));
    while (q.executeStep()) {
      RuntimeEvent e;
      e.seq = static_cast<uint64_t>(q.getColumn(0).getInt64());
      e.atMs = q.getColumn(1).getInt64();
      e.deployment = q.getColumn(2).getString();
      e.service = q.getColumn(3).getString();
      e.instance = q.getColumn(4).getString();
      e.type = q.getColumn(5).getString();
      e.message = q.getColumn(6).getString();
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<uint64_t> StateStore::lastEventSeq() {
  std::lock_guard lock(mu_);
  return guarded("last event", [&]() -> Result<uint64_t> {
    SQLite::Statement q(*db_, "SELECT COALESCE(MAX(seq), 0) FROM events");
    q.executeStep();
    return static_cast<uint64_t>(q.getColumn(0).getInt64());
  });
}

}  // namespace mercato::runtime::runc
