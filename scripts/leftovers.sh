#!/usr/bin/env bash
# A copy of the team's shared tool (../shared/tools/leftovers.sh beside the checkout, origin of this
# file), kept here so a clean clone (CI) can run tests/integration/leftovers_test.sh without it.
# Keep the two identical apart from these three lines; the test prefers the shared one when present.
# Lists what mercato left on this host: network namespaces, runc containers, shims and daemons, overlay
# mounts, veths. Run it after `make test` or `make demo` has finished: a new machine has none of these,
# so anything printed is a leak (or a process still running). Exit 1 when something is left.
# Read-only: it removes nothing.
set -u
found=0
say() { found=1; printf '%s\n' "$*"; }
ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^mc' || true)
[ -n "$ns" ] && say "network namespaces: $(echo $ns | tr '\n' ' ')"
busy=$(grep -E ' /run/netns/mc| /var/run/netns/mc' /proc/self/mountinfo 2>/dev/null | wc -l)
[ "$busy" -gt 0 ] && say "netns bind mounts still mounted: $busy"
if command -v runc >/dev/null 2>&1; then
  c=$(runc list -q 2>/dev/null | grep -v '^$' || true); [ -n "$c" ] && say "runc containers: $(echo $c | tr '\n' ' ')"
fi
p=$(ps -eo pid,comm,args 2>/dev/null | awk '$2 ~ /^(mercatod|mercato-shim|docker-registr)/ {print $1":"$2}' || true)
[ -n "$p" ] && say "processes: $(echo $p | tr '\n' ' ')"
m=$(awk '$3=="overlay" && $2 ~ /mercato/ {print $2}' /proc/mounts 2>/dev/null | head -5)
[ -n "$m" ] && say "overlay mounts: $(echo $m | tr '\n' ' ')"
v=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^(mc|veth)' | cut -d@ -f1 | head -10 || true)
[ -n "$v" ] && say "links: $(echo $v | tr '\n' ' ')"
if command -v iptables >/dev/null 2>&1; then
  stale=$(iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -oE 'mcb-[0-9a-f]+' | sort -u | while read -r b; do
    ip link show "$b" >/dev/null 2>&1 || echo "$b"; done)
  [ -n "$stale" ] && say "NAT rules for bridges that no longer exist: $(echo $stale | tr '\n' ' ')"
fi
[ $found -eq 0 ] && echo "nothing left behind"
exit $found
