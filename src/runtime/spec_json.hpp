// JSON form of DeploymentSpec, as stored by backends and carried in provider APIs. Secret env
// values are kept in the stored form (the state file is 0600) and replaced by "***" in the
// redacted form that status and logs may show.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "runtime/runtime.hpp"

namespace mercato::runtime {

nlohmann::json specToJson(const DeploymentSpec& spec, bool redactSecrets = false);
// Errors name the field path ("services[1].ports[0].port: expected an integer").
Result<DeploymentSpec> specFromJson(const nlohmann::json& j);

// JSON form of Usage (status APIs, the runc backend's state). usageFromJson takes what it finds
// and leaves missing fields at 0, so rows written before a field existed still read.
nlohmann::json usageToJson(const Usage& u);
Usage usageFromJson(const nlohmann::json& j);

}  // namespace mercato::runtime
