// Container networking over CNI: network namespaces, one bridge + subnet per deployment, the
// bridge/host-local/loopback plugins for attaching instances, and iptables rules that keep
// deployments apart.
//
// Layout (docs/runc-host.md): every deployment has a bridge `mcb-<8 hex>` with its own /24
// from 10.89.0.0/16; its instances get a veth into that bridge, the bridge's .1 as gateway,
// outbound NAT (one MASQUERADE rule per bridge) and IP forwarding. The filter chain
// MERCATO-ISOLATION (jumped to first
// from FORWARD) lets a bridge talk to itself and to the outside, and drops traffic between two
// different mercato bridges. The host reaches instance IPs directly over the bridges.
//
// All functions shell out (ip, iptables, CNI plugins) and need root. They are idempotent where
// stated, so recovery after a crash can simply repeat them.
//
// Thread-safety: functions are safe to call concurrently (iptables runs with -w; the CNI
// plugins and host-local IPAM lock their own state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::host {

inline constexpr const char* kCniPluginDir = "/usr/lib/cni";
inline constexpr const char* kNetnsDir = "/var/run/netns";
inline constexpr const char* kIsolationChain = "MERCATO-ISOLATION";
inline constexpr const char* kBridgePrefix = "mcb-";
inline constexpr const char* kDefaultSubnetPool = "10.89.0.0/16";

// Network namespaces, as `ip netns` manages them (bind-mounted files under /var/run/netns).
// kAlreadyExists when it exists; names are [A-Za-z0-9_.-], at most 64 chars.
Status createNetns(const std::string& name);
// Idempotent: a missing namespace is OK.
Status deleteNetns(const std::string& name);
Result<std::vector<std::string>> listNetns();
std::string netnsPath(const std::string& name);

// "mcb-" + 8 hex digits of a hash of the deployment id (12 chars, below IFNAMSIZ).
std::string bridgeNameFor(std::string_view deploymentId);
// The first /24 of `pool` (a /8../24 IPv4 CIDR) not in `used`. Skips the pool's first /24
// when the pool is larger, so x.y.0.0/24 stays free for other uses. kResourceExhausted when
// every /24 is taken.
Result<std::string> allocateSubnet(const std::vector<std::string>& used,
                                   std::string_view pool = kDefaultSubnetPool);

struct NetworkAttachRequest {
  std::string containerId;  // CNI_CONTAINERID; also keys host-local's reservation
  std::string netnsName;    // an existing namespace (createNetns)
  std::string bridge;       // the deployment's bridge (bridgeNameFor)
  std::string subnet;       // the deployment's subnet, e.g. "10.89.3.0/24"
  std::string ipamDataDir;  // host-local's state dir (reservations under <dir>/<bridge>/)
  std::string ifname = "eth0";
  std::string cniPluginDir = kCniPluginDir;
};

struct NetworkAttachment {
  std::string containerIp;  // "10.89.3.2"
  int prefixLength = 0;     // 24
  std::string gateway;      // "10.89.3.1"
  std::string containerMac;
  std::string hostVeth;   // host end of the veth pair (for readInterfaceCounters)
  std::string cniResult;  // the bridge plugin's raw result JSON
};

// Brings up lo in the namespace, then ADDs it to the bridge (creating the bridge on first use),
// installs the bridge's isolation rules and enables net.ipv4.ip_forward. Failures carry the
// plugin's {code,msg,details}.
Result<NetworkAttachment> attach(const NetworkAttachRequest& request);
// CNI DEL for the same request: removes the veth and releases the IP. Idempotent: DEL of
// something already gone (even a deleted namespace) is OK. Does not delete the namespace.
Status detach(const NetworkAttachRequest& request);
// When a deployment goes away: deletes the bridge link, its iptables rules and its host-local
// reservations (<ipamDataDir>/<bridge>). Idempotent.
Status removeBridge(const std::string& bridge, const std::string& ipamDataDir);

// Installs the host-wide MERCATO-ISOLATION chain (created, jumped to from the top of FORWARD,
// and rebuilt when its rules differ). The rules name no bridge, so a new deployment costs no
// iptables calls; done once per process (attach calls it). Idempotent.
Status ensureIsolation();
// The iptables rule specs (after "-A MERCATO-ISOLATION"), in order.
std::vector<std::vector<std::string>> isolationRules();
// Outbound NAT for a bridge's subnet (one POSTROUTING MASQUERADE rule), once per bridge per
// process; removeBridge removes it. Both idempotent.
Status ensureMasquerade(const std::string& bridge, const std::string& subnet);
Status removeMasquerade(const std::string& bridge);

// Parsers of CNI plugin output (untrusted-ish; exposed for the fuzz target).
// A success result (cniVersion 1.0.0 / 0.4.0) -> the attachment, picking the interface that has
// a sandbox as the container's and the non-bridge one without a sandbox as the host veth.
Result<NetworkAttachment> parseCniResult(std::string_view json, const std::string& bridge);
// A CNI error object {code,msg,details} (or anything else) -> a Status message.
std::string describeCniError(std::string_view output);

}  // namespace mercato::runtime::host
