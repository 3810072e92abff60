#include "provider/provider_store.hpp"

#include "common/catching.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

namespace mercato::provider {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS deployments (
  id TEXT PRIMARY KEY, escrow_id TEXT NOT NULL UNIQUE, publisher TEXT NOT NULL,
  manifest TEXT NOT NULL, receipt TEXT NOT NULL, state TEXT NOT NULL, created_ms INTEGER NOT NULL,
  suspended_ms INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
  deployment TEXT PRIMARY KEY, usage TEXT NOT NULL, claimed_ms INTEGER NOT NULL,
  tx_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traffic (
  deployment TEXT PRIMARY KEY, requests INTEGER NOT NULL, egress INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS event_cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
)sql";

template <typename F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  return catchingExceptions("provider db", what, std::forward<F>(f));
}

DeploymentRecord recordFrom(SQLite::Statement& q) {
  DeploymentRecord d;
  d.id = q.getColumn(0).getString();
  d.escrowId = q.getColumn(1).getString();
  d.publisher = q.getColumn(2).getString();
  d.manifestJson = q.getColumn(3).getString();
  d.receiptJson = q.getColumn(4).getString();
  d.state = q.getColumn(5).getString();
  d.createdAtMs = q.getColumn(6).getInt64();
  d.suspendedAtMs = q.getColumn(7).getInt64();
  d.reason = q.getColumn(8).getString();
  return d;
}

}  // namespace

Result<std::unique_ptr<ProviderStore>> ProviderStore::open(const std::string& path) {
  try {
    auto db =
        std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ::chmod(path.c_str(), 0600);
    db->exec("PRAGMA journal_mode=WAL");
    db->exec("PRAGMA synchronous=FULL");  // claim cursors and nonces must survive a crash
    db->exec("PRAGMA busy_timeout=5000");
    db->exec(kSchema);
    return std::unique_ptr<ProviderStore>(new ProviderStore(std::move(db)));
  } catch (const std::exception& e) {
    return internalError("opening provider state " + path + ": " + e.what());
  }
}

Status ProviderStore::useNonce(const std::string& nonce, int64_t nowMs) {
  std::lock_guard lock(mu_);
  return guarded("nonce", [&]() -> Status {
    SQLite::Statement q(*db_, "INSERT OR IGNORE INTO nonces VALUES (?, ?)");
    q.bind(1, nonce);
    q.bind(2, nowMs);
    if (q.exec() == 0) return alreadyExists("bundle nonce " + nonce + " was already used");
    return Status();
  });
}

Status ProviderStore::putDeployment(const DeploymentRecord& d) {
  std::lock_guard lock(mu_);
  return guarded("put deployment", [&]() -> Status {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO deployments VALUES (?,?,?,?,?,?,?,?,?)");
    q.bind(1, d.id);
    q.bind(2, d.escrowId);
    q.bind(3, d.publisher);
    q.bind(4, d.manifestJson);
    q.bind(5, d.receiptJson);
    q.bind(6, d.state);
    q.bind(7, d.createdAtMs);
    q.bind(8, d.suspendedAtMs);
    q.bind(9, d.reason);
    q.exec();
    return Status();
  });
}

Result<DeploymentRecord> ProviderStore::deployment(const std::string& id) {
  std::lock_guard lock(mu_);
  return guarded("get deployment", [&]() -> Result<DeploymentRecord> {
    SQLite::Statement q(*db_, "SELECT * FROM deployments WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return notFound("no deployment " + id);
    return recordFrom(q);
  });
}

Result<std::optional<DeploymentRecord>> ProviderStore::deploymentForEscrow(
    const std::string& escrowId) {
  std::lock_guard lock(mu_);
  return guarded("deployment by escrow", [&]() -> Result<std::optional<DeploymentRecord>> {
    SQLite::Statement q(*db_, "SELECT * FROM deployments WHERE escrow_id = ?");
    q.bind(1, escrowId);
    if (!q.executeStep()) return std::optional<DeploymentRecord>();
    return std::optional<DeploymentRecord>(recordFrom(q));
  });
}

Result<std::vector<DeploymentRecord>> ProviderStore::deployments(bool includeRemoved) {
  std::lock_guard lock(mu_);
  return guarded("list deployments", [&]() -> Result<std::vector<DeploymentRecord>> {
    std::vector<DeploymentRecord> out;
    SQLite::Statement q(*db_, includeRemoved ? "SELECT * FROM deployments ORDER BY created_ms"
                                             : "SELECT * FROM deployments WHERE state != 'removed' "
                                               "ORDER BY created_ms");
    while (q.executeStep()) out.push_back(recordFrom(q));
    return out;
  });
}

Result<ClaimCursor> ProviderStore::claimCursor(const std::string& deployment) {
  std::lock_guard lock(mu_);
  return guarded("claim cursor", [&]() -> Result<ClaimCursor> {
    ClaimCursor c;
    SQLite::Statement q(*db_, "SELECT usage, claimed_ms, tx_hash FROM claims WHERE deployment = ?");
    q.bind(1, deployment);
    if (!q.executeStep()) return c;
    auto u = ledger::usageFromJson(nlohmann::json::parse(q.getColumn(0).getString()), "usage");
    if (!u.isOk()) return u.status();
    c.claimed = *u;
    c.claimedAtMs = q.getColumn(1).getInt64();
    c.txHash = q.getColumn(2).getString();
    return c;
  });
}

Status ProviderStore::putClaimCursor(const std::string& deployment, const ClaimCursor& c) {
  std::lock_guard lock(mu_);
  return guarded("put claim cursor", [&]() -> Status {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO claims VALUES (?,?,?,?)");
    q.bind(1, deployment);
    q.bind(2, ledger::toJson(c.claimed).dump());
    q.bind(3, c.claimedAtMs);
    q.bind(4, c.txHash);
    q.exec();
    return Status();
  });
}

Status ProviderStore::putTraffic(const std::string& deployment, int64_t requests,
                                 int64_t egressBytes) {
  std::lock_guard lock(mu_);
  return guarded("put traffic", [&]() -> Status {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO traffic VALUES (?,?,?)");
    q.bind(1, deployment);
    q.bind(2, requests);
    q.bind(3, egressBytes);
    q.exec();
    return Status();
  });
}

Result<std::pair<int64_t, int64_t>> ProviderStore::traffic(const std::string& deployment) {
  std::lock_guard lock(mu_);
  return guarded("traffic", [&]() -> Result<std::pair<int64_t, int64_t>> {
    SQLite::Statement q(*db_, "SELECT requests, egress FROM traffic WHERE deployment = ?");
    q.bind(1, deployment);
    if (!q.executeStep()) return std::pair<int64_t, int64_t>{0, 0};
    return std::pair<int64_t, int64_t>{q.getColumn(0).getInt64(), q.getColumn(1).getInt64()};
  });
}

Result<uint64_t> ProviderStore::eventCursor(const std::string& name) {
  std::lock_guard lock(mu_);
  return guarded("event cursor", [&]() -> Result<uint64_t> {
    SQLite::Statement q(*db_, "SELECT seq FROM event_cursors WHERE name = ?");
    q.bind(1, name);
    if (!q.executeStep()) return uint64_t{0};
    return static_cast<uint64_t>(q.getColumn(0).getInt64());
  });
}

Status ProviderStore::putEventCursor(const std::string& name, uint64_t seq) {
  std::lock_guard lock(mu_);
  return guarded("put event cursor", [&]() -> Status {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO event_cursors VALUES (?, ?)");
    q.bind(1, name);
    q.bind(2, static_cast<int64_t>(seq));
    q.exec();
    return Status();
  });
}

}  // namespace mercato::provider
