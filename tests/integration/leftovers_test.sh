#!/usr/bin/env bash
# integration.leftovers: after every test that starts containers, mercatod or registries (they
# require the ctest fixture host_leftovers, whose cleanup this test is, so ctest runs it after
# all of them, with -j too), the host must hold nothing of ours: no network namespaces, netns
# mounts, runc containers, shims, daemons, overlay mounts, veths/bridges or NAT rules of
# removed bridges. A new machine has none, so anything listed is a leak.
#
# The check is leftovers.sh: the team's shared copy beside the checkout
# ($(git rev-parse --show-toplevel)/../shared/tools/leftovers.sh) when it exists, else our own
# scripts/leftovers.sh (a clean clone in CI). Something a test is still tearing down gets up to
# LEFTOVERS_GRACE_S seconds (default 15) to go; what is still there then fails the test, listed.
#
# Running a subset (`ctest -R X`) adds this test when X requires the fixture; `ctest -FC
# host_leftovers` leaves it out (e.g. while other runs share the machine).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
tool="$top/../shared/tools/leftovers.sh"
[ -x "$tool" ] || tool="$top/scripts/leftovers.sh"
[ -x "$tool" ] || { echo "FAIL: no leftovers.sh (looked for $top/../shared/tools and $top/scripts)"; exit 1; }
echo "using $tool"
grace=${LEFTOVERS_GRACE_S:-15}
for ((i = 0; i <= grace; i++)); do
  out=$("$tool" 2>&1) && { echo "$out"; exit 0; }
  [ "$i" -lt "$grace" ] && sleep 1
done
echo "FAIL: the tests left this behind (still there ${grace} s after the last of them ended):"
echo "$out"
exit 1
