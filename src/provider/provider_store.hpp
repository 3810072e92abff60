// ProviderStore: the provider's durable records in SQLite (DATA_DIR/provider/provider.db, WAL):
// the deployments it accepted (with their escrow, manifest and receipt), every bundle nonce it
// has seen (replay protection), the last usage it claimed per deployment (claims are cumulative,
// so a claim repeated after a crash pays nothing twice), the facade's traffic counters, and
// named ledger event cursors (the bid engine's position in the event log).
//
// Thread-safety: all methods are serialized by an internal mutex.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "common/status.hpp"
#include "ledger/types.hpp"

namespace mercato::provider {

struct DeploymentRecord {
  std::string id;
  std::string escrowId;
  std::string publisher;
  std::string manifestJson;  // manifest::toJson (secrets included; the file is 0600)
  std::string receiptJson;
  std::string state;  // active | suspended | removed
  int64_t createdAtMs = 0;
  int64_t suspendedAtMs = 0;  // when the escrow was found exhausted
  std::string reason;         // why suspended or removed
};

struct ClaimCursor {
  ledger::Usage claimed;  // cumulative usage of the last acknowledged claim
  int64_t claimedAtMs = 0;
  std::string txHash;
};

class ProviderStore {
 public:
  static Result<std::unique_ptr<ProviderStore>> open(const std::string& path);

  // Records the nonce; kAlreadyExists when it was seen before (a replayed bundle).
  Status useNonce(const std::string& nonce, int64_t nowMs);

  Status putDeployment(const DeploymentRecord& d);
  Result<DeploymentRecord> deployment(const std::string& id);
  Result<std::optional<DeploymentRecord>> deploymentForEscrow(const std::string& escrowId);
  Result<std::vector<DeploymentRecord>> deployments(bool includeRemoved);

  Result<ClaimCursor> claimCursor(const std::string& deployment);  // zero when none
  Status putClaimCursor(const std::string& deployment, const ClaimCursor& c);

  Status putTraffic(const std::string& deployment, int64_t requests, int64_t egressBytes);
  Result<std::pair<int64_t, int64_t>> traffic(const std::string& deployment);

  // The last ledger event seq `name` has applied; 0 when none was saved.
  Result<uint64_t> eventCursor(const std::string& name);
  Status putEventCursor(const std::string& name, uint64_t seq);

 private:
  explicit ProviderStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace mercato::provider
