// The publisher's local record of its deployments: $MERCATO_HOME/deployments.json, written by
// `mercato deploy` and read by `mercato deployments ...`. It holds what is needed to reach the
// deployment again (gateway URL, pinned node key, escrow) and the provider's signed receipt.
// Written atomically (temp file + rename); one CLI process at a time is assumed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "mercato/cli.hpp"
#include "publisher/gateway_client.hpp"

namespace mercato::cli {

struct DeploymentRecord {
  std::string id;
  std::string name;  // the manifest's application name
  std::string provider;
  std::string gatewayUrl;
  std::string nodeKey;  // hex; pinned for every later call
  std::string escrowId;
  std::vector<std::string> urls;
  std::vector<std::string> components;
  int64_t createdAtMs = 0;
  nlohmann::json receipt;
};

nlohmann::json toJson(const DeploymentRecord& r);
Result<std::vector<DeploymentRecord>> loadDeploymentRecords(const std::string& home);
Status saveDeploymentRecord(const std::string& home, const DeploymentRecord& r);
// By exact id, or by a unique prefix of one. kNotFound names the file searched.
Result<DeploymentRecord> findDeploymentRecord(const std::string& home, const std::string& id);
// A signed gateway client for the record's provider, as the current key.
Result<std::unique_ptr<publisher::GatewayClient>> gatewayFor(Context& ctx,
                                                             const DeploymentRecord& r);

}  // namespace mercato::cli
