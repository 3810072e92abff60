#!/usr/bin/env bash
# make demo: the main job on the embedded default. One `mercatod --dev` runs every role on this
# machine (embedded ledger with a faucet, a provider on the runc backend with its gateway and
# facade) next to a loopback docker-registry holding the sample image. A publisher then deploys
# examples/hello with the real CLI, requests it through the facade (the app starts from zero),
# watches it scale back to zero when idle, and sees the provider's claim paid on the ledger.
# The node keeps running until Ctrl-C. Scripts can read the lines `node: URL`, `home: DIR` (the
# publisher's client home), `deployment: ID` and `app: URL` on stdout; progress goes to stderr.
#
# Stopping: SIGINT (Ctrl-C), SIGTERM or SIGHUP, once or repeatedly, stops everything the demo
# started: its deployment's containers, mercatod and the registry. The first signal starts the
# cleanup; further ones are ignored until it is done, so a second Ctrl-C cannot cut it short.
# Cleanup removes the deployments through the node, stops the node (TERM, then KILL after 20 s),
# and, when the node could not remove them, starts `mercatod --runtime` on the same data dir to
# remove them with the runtime's own teardown; a last sweep removes by hand what is still there.
# Scratch space is a new directory under ${TMPDIR:-/tmp}.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN_DIR:-build/bin}
if [ "$(id -u)" -ne 0 ]; then
  echo "make demo needs root: the provider runs containers with runc (try: sudo make demo)" >&2
  exit 1
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mercato-demo.XXXXXX")
# With user namespaces a container's root is an unprivileged host uid that must pass through
# every directory above the runtime's data dir: searchable, not listable, by others.
chmod 711 "$WORK"
chmod 711 "$WORK"  # container root (an unprivileged uid, user namespaces) passes through it
RT="$WORK/node/runtime"  # the runtime's data dir inside mercatod's (apps/mercatod/node.cpp)
NODE_PID="" REG_PID="" CLEANED="" BRIDGES="" FG_PID=""

log() { echo "demo: $*" >&2; }

# run_step PROGRAM ARGS...: runs a step that can take a while (a deploy, a cold start) as a
# child and waits for it. Bash runs a trap only once the foreground command has ended, but it
# interrupts `wait` at once: so a TERM during the step starts the cleanup now (which stops the
# step) instead of after it. PROGRAM is a program, not a shell function, so that FG_PID is the
# program itself and stopping it leaves no grandchild running.
run_step() {
  "$@" &
  FG_PID=$!
  local rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=""
  return $rc
}

# The node's admin API (runtime role): list and remove every deployment. Returns 1 when the
# list can't be read or a removal fails.
remove_deployments() {  # URL
  local url=$1 tok ids id rc=0
  tok=$(cat "$WORK/node/admin.token" 2>/dev/null) || return 1
  ids=$(curl -sf -m 10 -H "Authorization: Bearer $tok" "$url/runtime/v1/deployments" |
    jq -r '.[].id') || return 1
  for id in $ids; do
    curl -sf -m 60 -X DELETE -H "Authorization: Bearer $tok" "$url/runtime/v1/deployments/$id" \
      >/dev/null || { log "could not remove deployment $id through the node"; rc=1; }
  done
  return $rc
}

# stop_pid PID NAME SECONDS: TERM, wait up to SECONDS, then KILL; reaps it. Returns 1 when it
# had to be killed.
stop_pid() {
  local pid=$1 name=$2 secs=$3 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  log "$name did not stop within ${secs} s of SIGTERM: killing it"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 1
}

# What the runtime keeps on the host is named with a prefix derived from its data dir
# (RuncRuntime::namePrefixFor: "mc" + the first 6 hex digits of BLAKE2b-256 of the path).
runtime_prefix() { printf 'mc%s' "$(printf '%s' "$RT" | b2sum -l 256 | cut -c1-6)"; }

# The bridges of the deployments in the runtime's state (one per deployment).
runtime_bridges() {
  [ -f "$RT/runtime.db" ] && sqlite3 -readonly "$RT/runtime.db" 'SELECT bridge FROM deployments' 2>/dev/null
}
# Deployments in the runtime's state: what a stopped node would re-adopt.
runtime_deployments() {
  [ -f "$RT/runtime.db" ] && sqlite3 -readonly "$RT/runtime.db" 'SELECT id FROM deployments' 2>/dev/null
}

# Containers still under the demo's runc root.
runc_leftovers() { [ -d "$RT/runc" ] && runc --root "$RT/runc" list -q 2>/dev/null | grep -v '^$'; }

# A second node on the same data dir with only the runtime role: it re-adopts what is left and
# removes it through the runtime's own teardown (bridges, NAT, user namespaces, disks...).
runtime_pass() {
  local pid url ok=1
  log "removing what the node left with mercatod --runtime on its data dir"
  rm -f "$WORK/node/node.json"
  # The cleanup ignores INT and TERM; the node must not inherit that, or TERM can't stop it.
  (trap - INT TERM HUP; exec setsid "$BIN/mercatod" --runtime --data-dir "$WORK/node" \
    --listen 127.0.0.1:0 >>"$WORK/node-cleanup.log" 2>&1 </dev/null) &
  pid=$!
  for _ in $(seq 1 300); do
    if [ -f "$WORK/node/node.json" ]; then
      url=$(jq -r .url "$WORK/node/node.json" 2>/dev/null)
      [ -n "$url" ] && curl -sf -m 2 "$url/healthz" >/dev/null && break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "${url:-}" ] && remove_deployments "$url"; then ok=0; fi
  stop_pid "$pid" "mercatod --runtime" 20 || ok=1
  [ $ok -eq 0 ] || log "mercatod --runtime could not remove everything (log: $(tail -3 "$WORK/node-cleanup.log"))"
}

# Processes whose command line names the work dir (shims, a node, the registry), this shell
# aside. Reads /proc with builtins only, so no helper of ours matches itself.
demo_processes() {
  local d args
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = "$$" ] && continue
    mapfile -d '' args 2>/dev/null <"$d/cmdline" || continue
    [[ "${args[*]}" == *"$WORK"* ]] && echo "${d#/proc/}"
  done
}

# The last resort, by hand: processes that run from the work dir (shims, a stuck node), the
# containers under its runc root, its network namespaces and cgroups, the deployment's bridge
# and the iptables rules that name it, and mounts under the work dir.
sweep() {
  local prefix pid c ns m br t rule
  prefix=$(runtime_prefix)
  for pid in $(demo_processes); do
    log "killing process $pid left from the demo: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    kill -KILL "$pid" 2>/dev/null
  done
  for c in $(runc_leftovers); do
    log "removing container $c"
    runc --root "$RT/runc" kill "$c" KILL 2>/dev/null
    runc --root "$RT/runc" delete -f "$c" 2>/dev/null
  done
  for ns in /run/netns/"$prefix"-*; do
    [ -e "$ns" ] || continue
    log "removing network namespace ${ns##*/}"
    ip netns delete "${ns##*/}" 2>/dev/null || umount -l "$ns" 2>/dev/null
    rm -f "$ns" 2>/dev/null
  done
  for c in $(find /sys/fs/cgroup -depth -type d -name "$prefix-*" 2>/dev/null); do
    log "removing cgroup $c"
    rmdir "$c" 2>/dev/null
  done
  for br in $BRIDGES $(runtime_bridges); do
    for t in nat filter; do
      iptables -w -t "$t" -S 2>/dev/null | grep -F -- "$br" | grep '^-A ' | while read -r rule; do
        log "removing iptables rule ($t) $rule"
        eval "iptables -w -t $t ${rule/#-A/-D}" 2>/dev/null
      done
    done
    if ip link show "$br" >/dev/null 2>&1; then
      log "removing bridge $br"
      ip link delete "$br" 2>/dev/null
    fi
  done
  # Deepest first, so a mount under another goes before it.
  awk -v w="$WORK" 'index($5, w "/") == 1 || $5 == w {print $5}' /proc/self/mountinfo |
    sort -r | while read -r m; do
    log "unmounting $m"
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
}

cleanup() {
  # Once, and not interruptible: a second INT/TERM must not cut it short and leave the node
  # and its containers running.
  trap '' INT TERM HUP
  [ -n "$CLEANED" ] && return 0
  CLEANED=1
  set +e
  local removed=1 stopped=0
  [ -n "$FG_PID" ] && stop_pid "$FG_PID" "the interrupted step" 5
  BRIDGES=$(runtime_bridges)  # for the sweep, should the runtime not remove them
  # The runc backend keeps containers across daemon restarts (it re-adopts them), so the demo
  # must remove its deployments itself, or their containers, mounts and networks outlive it.
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null && [ -n "${NODE:-}" ]; then
    remove_deployments "$NODE" && removed=0
  fi
  if [ -n "$NODE_PID" ]; then
    stop_pid "$NODE_PID" mercatod 20 || stopped=1
    if [ $removed -ne 0 ] || [ $stopped -ne 0 ] || [ -n "$(runtime_deployments)" ] ||
      [ -n "$(runc_leftovers)" ]; then
      runtime_pass
    fi
  fi
  [ -n "$REG_PID" ] && stop_pid "$REG_PID" docker-registry 10
  sweep
  # --one-file-system: never delete through a mount that survived the sweep.
  rm -rf --one-file-system "$WORK" 2>/dev/null || log "could not remove $WORK entirely"
  return 0
}
on_signal() {
  trap '' INT TERM HUP
  echo >&2
  log "stopping (removing the deployment, stopping the node and the registry)"
  exit 0
}
trap cleanup EXIT
trap on_signal INT TERM HUP

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
source scripts/registry.sh  # freeport, start_registry

step "Starting a loopback OCI registry with the sample image"
start_registry || exit 1
run_step "$BIN/mercato-push-sample" "127.0.0.1:$REG_PORT" mercato/sample:v1 >"$WORK/image"
IMAGE=$(cat "$WORK/image")
echo "pushed $IMAGE" >&2

step "Starting mercatod --dev (ledger + faucet, provider with runc backend, gateway, facade)"
# start_node LISTEN: mercatod in its own session (a Ctrl-C on the terminal reaches only this
# script, whose cleanup removes the deployments through the node before stopping it). Returns 1
# when it exits or has not written node.json within 15 s.
start_node() {
  rm -f "$WORK/node/node.json"
  setsid "$BIN/mercatod" --dev --data-dir "$WORK/node" --listen "$1" 2>>"$WORK/node.log" \
    </dev/null &
  NODE_PID=$!
  for _ in $(seq 1 150); do
    [ -f "$WORK/node/node.json" ] && return 0
    kill -0 "$NODE_PID" 2>/dev/null || { wait "$NODE_PID" 2>/dev/null; NODE_PID=""; return 1; }
    sleep 0.1
  done
  return 1
}
# On the CLI's default node address when it is free, so that the CLI finds the node from another
# shell without --node; on a free port otherwise (or when another process took it meanwhile).
if (exec 3<>/dev/tcp/127.0.0.1/7400) 2>/dev/null || ! start_node 127.0.0.1:7400; then
  [ -z "$NODE_PID" ] || { cat "$WORK/node.log" >&2; exit 1; }
  start_node 127.0.0.1:0 || { cat "$WORK/node.log" >&2; exit 1; }
fi
NODE=$(jq -r .url "$WORK/node/node.json")
PROVIDER=$(jq -r .address "$WORK/node/node.json")
echo "node: $NODE"
PUB=("$BIN/mercato" --home "$WORK/publisher" --node "$NODE")
pub() { "${PUB[@]}" "$@"; }

step "Publisher: keys, and 100 MER from the dev faucet"
pub keys create >&2
echo "home: $WORK/publisher"
pub ledger mint 100 >&2
pub providers list >&2

step "Publisher deploys examples/hello (manifest -> provider -> escrow -> sealed bundle)"
sed "s|image: .*|image: $IMAGE|" examples/hello/app.yaml >"$WORK/app.yaml"
run_step "${PUB[@]}" deploy "$WORK/app.yaml" --provider "$PROVIDER" --deposit 5 --json >"$WORK/receipt.json"
RECEIPT=$(cat "$WORK/receipt.json")
DEPLOYMENT=$(jq -r '.deploymentId // .receipt.deploymentId' <<<"$RECEIPT")
APP=$(jq -r '(.urls // .receipt.urls)[0]' <<<"$RECEIPT")
echo "deployment: $DEPLOYMENT"
echo "app: $APP"

step "Request through the facade: the app starts from zero"
time_start=$(date +%s%N)
run_step curl -sS -m 60 "$APP"
echo "first request took $(( ($(date +%s%N) - time_start) / 1000000 )) ms (cold start)" >&2
time_start=$(date +%s%N)
run_step curl -sS -m 30 "$APP" >/dev/null
echo "second request took $(( ($(date +%s%N) - time_start) / 1000000 )) ms (warm)" >&2
pub deployments status "$DEPLOYMENT" >&2

step "Idle: the facade scales the app back to zero (idleTimeout in the manifest)"
for _ in $(seq 1 60); do
  running=$(pub deployments status "$DEPLOYMENT" --json | jq '[.runtime.services[]?.instances[]?] | length')
  [ "$running" = "0" ] && break
  sleep 1
done
echo "instances running: $running" >&2

step "The provider's claim, paid from the escrow"
for _ in $(seq 1 30); do
  claimed=$(pub deployments status "$DEPLOYMENT" --json | jq -r '.escrow.claimed // 0')
  [ "$claimed" != "0" ] && [ "$claimed" != "0.000000" ] && break
  sleep 1
done
pub deployments status "$DEPLOYMENT" >&2

step "Running. node: $NODE  app: $APP  (Ctrl-C stops everything the demo started)"
if [ "$NODE" = "http://127.0.0.1:7400" ]; then
  echo "From another shell: $BIN/mercato --home $WORK/publisher deployments status $DEPLOYMENT" >&2
else  # 7400 was taken: the CLI needs the node's address
  echo "From another shell: $BIN/mercato --home $WORK/publisher --node $NODE deployments status $DEPLOYMENT" >&2
fi
wait "$NODE_PID"
