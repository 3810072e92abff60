// Container networking over CNI: network namespaces, one bridge + subnet per deployment, the
// bridge/host-local/loopback plugins for attaching instances, and the iptables rules that keep
// deployments apart from each other and from the host.
//
// Layout (docs/runc-host.md "Networking and isolation"): every deployment has a bridge
// `mcb-<8 hex>` with its own /24 from 10.89.0.0/16; its instances get a veth into that bridge,
// the bridge's .1 as gateway, outbound NAT (one MASQUERADE rule per bridge) and IP forwarding.
// - FORWARD jumps first to MERCATO-ISOLATION: a bridge talks to itself and to the public
//   internet; traffic between two mercato bridges is dropped, and so is egress to private,
//   link-local, CGNAT and the host's own addresses, unless the deployment's per-bridge rules in
//   MERCATO-EGRESS-ALLOW accept it (its nameservers on port 53, the provider's allow-list).
// - INPUT jumps first to MERCATO-INPUT: from a bridge the host accepts replies to its own
//   connections and what MERCATO-INPUT-ALLOW offers (DNS on a nameserver of the host's), and
//   drops everything else. The host itself reaches instance IPs directly (OUTPUT).
// The two constant chains are shared by every mercato process on the host; per-deployment rules
// are tagged with their bridge (`-i mcb-...`) and come and go with it. The same for IPv6 with
// ip6tables (when installed), where the bridges carry only link-local traffic.
//
// All functions shell out (ip, iptables, CNI plugins) and need root. They are idempotent where
// stated, so recovery after a crash can simply repeat them.
//
// Thread-safety: functions are safe to call concurrently. iptables changes are serialized by a
// process mutex plus a host-wide flock (/run/mercato-isolation.lock), and preparing /run/netns by
// another (/run/mercato-netns.lock); the CNI plugins and host-local IPAM lock their own state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::host {

inline constexpr const char* kCniPluginDir = "/usr/lib/cni";
inline constexpr const char* kNetnsDir = "/var/run/netns";
inline constexpr const char* kIsolationChain = "MERCATO-ISOLATION";       // FORWARD, constant
inline constexpr const char* kEgressAllowChain = "MERCATO-EGRESS-ALLOW";  // FORWARD, per bridge
inline constexpr const char* kInputChain = "MERCATO-INPUT";               // INPUT, constant
inline constexpr const char* kInputAllowChain = "MERCATO-INPUT-ALLOW";    // INPUT, per bridge
inline constexpr const char* kBridgePrefix = "mcb-";
inline constexpr const char* kDefaultSubnetPool = "10.89.0.0/16";

// Network namespaces, as `ip netns` manages them (bind-mounted files under /var/run/netns).
// kAlreadyExists when it exists; names are [A-Za-z0-9_.-], at most 64 chars.
// ownerUserns: a user namespace file (userns.hpp) that will own the new network namespace, so
// that a container in that user namespace can mount sysfs for it. "" = the host's.
Status createNetns(const std::string& name, const std::string& ownerUserns = "");
// Makes /var/run/netns a shared mount point, as `ip netns add` does before its first namespace:
// a bind mount of the directory on itself, made MS_SHARED|MS_REC. A namespace file mounted
// before that would be covered by the bind mount that a later `ip netns add` makes, and could
// then never be unmounted or deleted ("Device or resource busy"). createNetns calls it first.
// Checks /proc/self/mountinfo and remembers success, so only a process's first call does any
// work; changes are made under a host-wide lock (/run/mercato-netns.lock). Idempotent.
Status prepareNetnsDir();
// Tests only: while false, createNetns skips prepareNetnsDir() (the behaviour before the fix,
// to show the race). Default true.
void setPrepareNetnsDirForTesting(bool enabled);
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
  // The sandbox's network policy (RuntimeConfig::sandbox): destinations (IPv4/IPv6 CIDRs) the
  // instances may reach although they fall in a range dropped by default, and the nameservers
  // they may query on port 53 (empty: hostResolvConf().nameservers). Both take effect with the
  // deployment's first attach in a process and stay until removeBridge (or the next process's
  // first attach, which replaces them with its own).
  std::vector<std::string> egressAllow;
  std::vector<std::string> nameservers;
};

// kInvalidArgument naming the first entry that is not a CIDR (egressAllow) or an address
// (nameservers), so a bad provider.yaml fails at create(), not at an instance's start.
Status checkNetworkPolicy(const std::vector<std::string>& egressAllow,
                          const std::vector<std::string>& nameservers);

// The host's /etc/resolv.conf as an instance should see it: its nameservers minus loopback
// stubs (unreachable from an instance's namespace; 1.1.1.1 and 8.8.8.8 when none is left) and its
// search domains. writeEtcFiles and the firewall's DNS rules both use it, so they agree.
struct ResolvConf {
  std::vector<std::string> nameservers;
  std::vector<std::string> search;
};
ResolvConf hostResolvConf(const std::string& path = "/etc/resolv.conf");

struct NetworkAttachment {
  std::string containerIp;  // "10.89.3.2"
  int prefixLength = 0;     // 24
  std::string gateway;      // "10.89.3.1"
  std::string containerMac;
  std::string hostVeth;   // host end of the veth pair (for readInterfaceCounters)
  std::string cniResult;  // the bridge plugin's raw result JSON
};

// Brings up lo in the namespace, then ADDs it to the bridge (creating the bridge on first use),
// makes sure the host-wide chains and the bridge's own rules (NAT, nameservers, allow-list) are
// in place, and enables net.ipv4.ip_forward. Failures carry the plugin's {code,msg,details}.
Result<NetworkAttachment> attach(const NetworkAttachRequest& request);
// CNI DEL for the same request: removes the veth and releases the IP. Idempotent: DEL of
// something already gone (even a deleted namespace) is OK. Does not delete the namespace.
Status detach(const NetworkAttachRequest& request);
// When a deployment goes away: deletes the bridge link, its iptables rules (NAT and filter, IPv4
// and IPv6) and its host-local reservations (<ipamDataDir>/<bridge>). Idempotent.
Status removeBridge(const std::string& bridge, const std::string& ipamDataDir);
// Bridges this runtime created (those with a directory under <ipamDataDir>), for orphan cleanup.
std::vector<std::string> listBridges(const std::string& ipamDataDir);

// Installs the host-wide chains (created, jumped to from the top of FORWARD and INPUT, and
// rebuilt atomically when their rules differ) and the empty per-bridge chains. Their rules name
// no bridge, so they are the same for every process. Done once per process (attach calls it);
// ip6tables missing is logged, not an error. Idempotent.
Status ensureIsolation();
// The rule specs of the constant chains (after "-A <chain>"), in order, as iptables -S prints
// them. `ipv6` selects the ip6tables variant.
std::vector<std::vector<std::string>> isolationRules(bool ipv6 = false);  // MERCATO-ISOLATION
std::vector<std::vector<std::string>> inputRules(bool ipv6 = false);      // MERCATO-INPUT
// A bridge's own rules: outbound NAT for its subnet (POSTROUTING MASQUERADE) and the accepts of
// its nameservers and allow-list. Installed with one iptables-restore the first time per bridge
// per process (and replaced when they differ from what is there); removeBridge removes them.
Status ensureBridgeRules(const NetworkAttachRequest& request);

// Parsers of CNI plugin output (untrusted-ish; exposed for the fuzz target).
// A success result (cniVersion 1.0.0 / 0.4.0) -> the attachment, picking the interface that has
// a sandbox as the container's and the non-bridge one without a sandbox as the host veth.
Result<NetworkAttachment> parseCniResult(std::string_view json, const std::string& bridge);
// A CNI error object {code,msg,details} (or anything else) -> a Status message.
std::string describeCniError(std::string_view output);

}  // namespace mercato::runtime::host
