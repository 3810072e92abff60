// ProviderConfig: provider.yaml, what a provider offers and how it runs (docs/operations.md).
//
//   gateway:
//     listen: 0.0.0.0:7443          # HTTPS, certificate bound to the node key
//     url: https://provider.example:7443   # what the registry lists (default: from listen)
//     execMaxSessions: 16           # interactive exec sessions open at once (0: none)
//     execMaxSessionsPerPublisher: 4   # of those, at most this many for one publisher
//     execIdleTimeoutSeconds: 900   # a session with no traffic this long is closed
//   facade:
//     listen: 0.0.0.0:8080
//     domain: apps.example.com      # apps answer at <deployment>.<domain> and /d/<deployment>/
//     url: http://apps.example.com:8080    # base URL given to publishers (default: from listen)
//   attributes: {region: eu-west, tier: community}
//   capacity: {cpu: 2000m, memory: 4Gi, storage: 50Gi}
//   prices:                          # in MER (decimals allowed)
//     cpuSecond: 0.0001
//     memGibSecond: 0.00005
//     egressGib: 0.01
//     requests1k: 0.001
//     storageGibHour: 0.0002        # per GiB-hour of disk in use (optional, default 0)
//   backend: runc
//   claimIntervalSeconds: 30         # how often usage is claimed
//   gracePeriodSeconds: 300          # after exhaustion: 402, then removal
//   maxBundleBytes: 1073741824
//   sandbox:                         # the tenant sandbox (docs/runc-host.md); never per tenant
//     seccomp: {allow: [ptrace]}     # relax groups of the default seccomp profile
//     egress: {allow: [10.0.5.0/24]} # private destinations instances may reach anyway
//     nameservers: [10.0.0.2]        # instances' DNS (default: the host's, minus loopback)
//     userNamespaces: true           # one uid range per deployment (default true)
//     diskQuotas: true               # a size-limited disk per instance (default true)
//     defaultStorage: 1Gi            # an instance's disk when its manifest sets none
//   bidding:                         # answer orders with bids (docs/bidengine.md)
//     bidTtlSeconds: 300
//     pricingFile: pricing.yaml      # or strategy/scale/script inline; the file is watched
//
// Unknown keys are errors naming file:line. Thread-safety: value type.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/status.hpp"
#include "ledger/types.hpp"
#include "provider/bidengine/bidding_config.hpp"
#include "runtime/runtime.hpp"

namespace mercato::provider {

struct ProviderConfig {
  std::string gatewayListen = "127.0.0.1:0";
  std::string gatewayUrl;  // "" = https://<gateway listen address>
  int64_t execMaxSessions = 16;
  int64_t execMaxSessionsPerPublisher = 4;
  int64_t execIdleTimeoutMs = 900'000;
  std::string facadeListen = "127.0.0.1:0";
  std::string facadeDomain = "apps.localhost";
  std::string facadeUrl;  // "" = http://<facade listen address>
  std::map<std::string, std::string> attributes;
  ledger::Capacity capacity{2000, int64_t{4} << 30, int64_t{20} << 30};
  ledger::Prices prices;
  std::string backend = "runc";
  int64_t claimIntervalMs = 30'000;
  int64_t graceMs = 300'000;
  int64_t maxBundleBytes = int64_t{1} << 30;
  std::optional<bidengine::BiddingConfig> bidding;  // the bid engine runs when set
  runtime::SandboxConfig sandbox;                   // handed to the cluster backend
};

Result<ProviderConfig> loadProviderConfig(const std::string& path);
// `mercatod --dev` without a provider.yaml: loopback listeners on free ports, this host's cores
// and 3/4 of its memory, small non-zero prices, claims every 5 s, 30 s grace, and bidding on
// orders with the scale strategy at those prices.
ProviderConfig devProviderConfig();
Result<ProviderConfig> parseProviderConfig(const std::string& yamlText, const std::string& origin);

}  // namespace mercato::provider
