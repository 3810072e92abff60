// Manifest: the publisher's description of an application, in the native OAM-style YAML
// (docs/manifest.md), and its mapping to the runtime's DeploymentSpec plus the facade's routing
// and scaling settings. Akash SDL and Kubernetes manifests come later as extra input formats
// that produce the same Manifest.
//
//   kind: Application
//   name: hello
//   components:
//     - name: web
//       image: 127.0.0.1:5000/mercato/sample:v1     # or  bundle: ./image.tar (OCI layout)
//       command: ["/bin/sample-server"]
//       args: []
//       env:
//         - {name: GREETING, value: hi}
//         - {name: API_KEY, value: s3cret, secret: true}
//       resources: {cpu: 500m, memory: 128Mi}
//       expose: {port: 8080, hostname: hello}        # optional; one component per app exposed
//       scaling: {min: 0, max: 4, targetConcurrency: 10, idleTimeout: 60s}
//
// Errors say the field path and the line: "app.yaml:7: components[0].resources.cpu: '5 cores'
// is not a CPU quantity (expected 500m, 0.5 or 2)". Unknown keys are errors.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "runtime/runtime.hpp"

namespace mercato::manifest {

// Limits (docs/manifest.md lists them with the reasons).
inline constexpr size_t kMaxManifestBytes = 1 << 20;
inline constexpr size_t kMaxComponents = 32;
inline constexpr size_t kMaxNameLength = 32;
inline constexpr size_t kMaxEnvVars = 256;
inline constexpr size_t kMaxEnvValueBytes = 32 * 1024;
inline constexpr size_t kMaxArgs = 256;
inline constexpr int kMaxReplicas = 100;
inline constexpr int kMaxTargetConcurrency = 10'000;
inline constexpr int64_t kMinCpuMillis = 10;
inline constexpr int64_t kMaxCpuMillis = 256'000;
inline constexpr int64_t kMinMemoryBytes = 4ll << 20;
inline constexpr int64_t kMaxMemoryBytes = 1ll << 40;
inline constexpr int64_t kMinIdleTimeoutMs = 1'000;
inline constexpr int64_t kMaxIdleTimeoutMs = 7ll * 24 * 3600 * 1000;
// Defaults when `resources` (or one of its fields) is omitted.
inline constexpr int64_t kDefaultCpuMillis = 100;
inline constexpr int64_t kDefaultMemoryBytes = 128ll << 20;
// resources.storage: the instance's writable layer (a hard limit; ENOSPC inside at the limit).
inline constexpr int64_t kMinStorageBytes = 16ll << 20;
inline constexpr int64_t kMaxStorageBytes = 1ll << 40;
inline constexpr int64_t kDefaultStorageBytes = 1ll << 30;

struct Expose {
  uint16_t port = 0;
  std::string hostname;  // optional label under the facade domain; "" = the deployment id
};

struct Scaling {
  int min = 0;
  int max = 1;
  int targetConcurrency = 10;      // in-flight requests per instance before scaling up
  int64_t idleTimeoutMs = 60'000;  // scale to `min` after this long without requests
};

struct EnvVar {
  std::string name;
  std::string value;
  bool secret = false;
};

struct Component {
  std::string name;
  std::string image;       // a registry reference, or "" when bundled
  std::string bundlePath;  // `bundle:` a local OCI layout dir or tarball (publisher side)
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  int64_t cpuMillis = 0;                        // resources.cpu
  int64_t memoryBytes = 0;                      // resources.memory
  int64_t storageBytes = kDefaultStorageBytes;  // resources.storage
  std::optional<Expose> expose;
  Scaling scaling;
  int line = 0;  // where it starts in the source, for later errors

  // True when the image travels in the bundle (`bundle:` in YAML; "image": "bundle:<name>" in
  // JSON, where bundlePath is empty since it only means something on the publisher's machine).
  bool bundled() const { return image.empty(); }
};

struct Manifest {
  std::string name;
  std::vector<Component> components;

  // The sum over components of resources × scaling.max: what the app may occupy at peak.
  int64_t peakCpuMillis() const;
  int64_t peakMemoryBytes() const;
  // Sum over components of resources.storage x scaling.max: disk at full scale.
  int64_t peakStorageBytes() const;
  const Component* exposed() const;  // nullptr when nothing is exposed
};

// Parses and validates. `source` names the input in errors ("app.yaml").
Result<Manifest> parseManifest(const std::string& yamlText, const std::string& source);
Result<Manifest> loadManifestFile(const std::string& path);

// Checks every rule of docs/manifest.md on an already parsed value (both parsers call it). A
// component needs `image` or `bundlePath` unless `allowBundledWithoutPath` (the JSON form, where
// a bundled component has neither). Errors name the field path ("components[1].scaling.max").
Status validateManifest(const Manifest& m, bool allowBundledWithoutPath = false);

// Durations: one or more <integer><unit> parts, units ms, s, m, h ("30s", "1500ms", "1h30m").
Result<int64_t> parseDurationMs(std::string_view text);
// The largest unit that divides exactly: 60000 -> "1m", 1500 -> "1500ms".
std::string formatDurationMs(int64_t ms);

// The JSON form carried inside bundles and stored by providers (bundled images appear as
// "image": "bundle:<component>"). Quantities are numbers: resources {cpuMillis, memoryBytes},
// scaling.idleTimeoutMs. `redactSecrets` replaces secret values with "***" (for status, logs).
// manifestFromJson is strict (unknown keys, wrong types are errors naming the path) and
// validates like parseManifest.
nlohmann::json toJson(const Manifest& m, bool redactSecrets = false);
Result<Manifest> manifestFromJson(const nlohmann::json& j);

// The runtime spec for a deployment of this manifest. Each component becomes a service whose
// replicas start at scaling.min. A bundled component's image is named "bundle:<component>" and
// `layoutFor(component)` gives the path where the provider stored its layout (ServiceSpec::
// imageLayout). A registry image is passed on as written and is only ever pulled.
runtime::DeploymentSpec toDeploymentSpec(
    const Manifest& m, const std::string& deploymentId, const std::string& owner,
    const std::function<std::string(const Component&)>& layoutFor = nullptr);

}  // namespace mercato::manifest
