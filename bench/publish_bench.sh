#!/usr/bin/env bash
# Issue 4 benchmarks on one machine (root): a ledger host, a provider (runc backend) and the CLI.
#   deploy latency : `mercato deploy` until the first 200 through the facade (warm image cache)
#   cold start     : first request to an app scaled to zero, p50/p99 over N, and a warm request
#   memory         : the provider's RSS per deployment scaled to zero
# Usage: sudo bench/publish_bench.sh [BIN_DIR] [COLD_RUNS] [IDLE_DEPLOYMENTS]
# Any step that fails (registry, ledger host or provider not starting, a deploy that gives no URL,
# an app that never answers, an app that is not scaled to zero before a cold start) exits 1 with
# the reason and prints no figure for it. Every wait is bounded.
set -euo pipefail
BIN_DIR=${1:-build/bin}
COLD_RUNS=${2:-30}
IDLE_DEPLOYMENTS=${3:-20}
export BIN_DIR
source "$(dirname "$0")/../tests/integration/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "needs root (runc)" >&2; exit 2; }
chmod 711 "$WORK"  # the provider's data dir is below: container root (user namespaces) passes
ms() { echo $(( $(date +%s%N) / 1000000 )); }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(p*(NR-1)+0.5)+1; print a[i]}'; }

REG_PID="" PROV_PID=""
# Containers outlive their daemon by design: remove every deployment before stopping it.
remove_all() {
  local api token
  api=$(jq -r .url "$WORK/prov/node.json" 2>/dev/null) || return 0
  token=$(cat "$WORK/prov/admin.token" 2>/dev/null) || return 0
  for id in $(curl -s -m 10 -H "Authorization: Bearer $token" "$api/runtime/v1/deployments" | jq -r '.[].id'); do
    curl -s -m 60 -X DELETE -H "Authorization: Bearer $token" "$api/runtime/v1/deployments/$id" >/dev/null
  done
}
# stop PID SECONDS: TERM, then KILL when it is still running after SECONDS.
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap 'trap "" INT TERM; set +e; remove_all; [ -n "$PROV_PID" ] && stop $PROV_PID 20; [ -n "$REG_PID" ] && stop $REG_PID 10; cleanup' EXIT
trap 'exit 1' INT TERM
start_registry || fail "the registry did not start"
IMAGE=$(push_sample) || fail "could not push the sample image"
start_daemon "$WORK/ledger" --dev --no-provider
LEDGER=$NODE_URL
FACADE_PORT=$(freeport)
cat >"$WORK/provider.yaml" <<YAML
facade: {listen: 127.0.0.1:$FACADE_PORT, domain: apps.test}
capacity: {cpu: 64000m, memory: 64Gi}
prices: {cpuSecond: 0.0001, requests1k: 0.001}
claimIntervalSeconds: 30
YAML
printf 'runtime:\n  subnetPool: 10.%s.0.0/16\n' "$((100 + RANDOM % 150))" >"$WORK/node.yaml"
"$BIN_DIR/mercatod" --config "$WORK/node.yaml" --provider "$WORK/provider.yaml" --ledger "$LEDGER" \
  --data-dir "$WORK/prov" --listen 127.0.0.1:0 >"$WORK/provider.log" 2>&1 &
PROV_PID=$!
for _ in $(seq 1 150); do [ -f "$WORK/prov/node.json" ] && break; sleep 0.1; done
[ -f "$WORK/prov/node.json" ] || fail "the provider did not start within 15 s: $(tail -5 "$WORK/provider.log")"
pub() { "$BIN_DIR/mercato" --home "$WORK/pub" --node "$LEDGER" "$@"; }
pub keys create >/dev/null
pub ledger mint 100000 >/dev/null
manifest() {  # NAME IDLE
  printf 'kind: Application\nname: %s\ncomponents:\n  - name: web\n    image: %s\n    resources: {cpu: 100m, memory: 32Mi}\n    expose: {port: 8080}\n    scaling: {min: 0, max: 1, idleTimeout: %s}\n' \
    "$1" "$IMAGE" "$2" >"$WORK/$1.yaml"
}
deploy() {  # NAME: prints the app's URL
  local url
  url=$(pub deploy "$WORK/$1.yaml" --select cheapest --deposit 10 --json | jq -r '.receipt.urls[0]') ||
    fail "deploy $1 failed"
  [ -n "$url" ] && [ "$url" != null ] || fail "deploy $1 gave no app URL"
  echo "$url"
}
# first_200 URL: waits (up to 30 s) for the app's first 200.
first_200() {
  local i
  for ((i = 0; i < 6000; i++)); do curl -sf -m 5 -o /dev/null "$1" && return 0; sleep 0.005; done
  fail "$1 did not answer 200 within 30 s"
}

# Warm the image cache.
manifest warm 1s
url=$(deploy warm); first_200 "$url"

# Deploy latency.
lat=()
for i in 1 2 3 4 5; do
  manifest "app$i" 60s
  t0=$(ms)
  url=$(deploy "app$i")
  first_200 "$url"
  lat+=($(( $(ms) - t0 )))
done
echo "deploy -> first 200 (ms): ${lat[*]}"
printf '%s\n' "${lat[@]}" | pct 0.5 | sed 's/^/deploy latency p50 ms: /'

# Cold start vs warm through the facade (idleTimeout 1s).
manifest cold 1s
url=$(deploy cold); first_200 "$url"
cold=() warm=()
for i in $(seq 1 "$COLD_RUNS"); do
  # Wait until the facade scaled it to zero: a request before that is not a cold start.
  n=""
  for _ in $(seq 1 100); do
    n=$(curl -s -H "Authorization: Bearer $(cat "$WORK/prov/admin.token")" \
      "$(jq -r .url "$WORK/prov/node.json")/runtime/v1/deployments" |
      jq --arg u "$url" '[.[] | select(("/d/" + .id + "/") as $p | $u | endswith($p)) | .services[].instances[]] | length')
    [ "$n" = 0 ] && break
    sleep 0.1
  done
  [ "$n" = 0 ] || fail "cold run $i: the app was not scaled to zero within 10 s (instances: ${n:-?})"
  t=$(curl -sf -m 30 -o /dev/null -w '%{time_total}' "$url") || fail "cold run $i: the request failed"
  cold+=($(awk -v t="$t" 'BEGIN{printf "%.1f", t*1000}'))
  t=$(curl -sf -m 30 -o /dev/null -w '%{time_total}' "$url") || fail "warm run $i: the request failed"
  warm+=($(awk -v t="$t" 'BEGIN{printf "%.1f", t*1000}'))
done
echo "cold start p50 ms: $(printf '%s\n' "${cold[@]}" | pct 0.5)  p99 ms: $(printf '%s\n' "${cold[@]}" | pct 0.99)"
echo "warm request p50 ms: $(printf '%s\n' "${warm[@]}" | pct 0.5)  p99 ms: $(printf '%s\n' "${warm[@]}" | pct 0.99)"

# Memory per deployment scaled to zero.
rss() { awk '/VmRSS/ {print $2}' "/proc/$PROV_PID/status" || fail "the provider is gone"; }
before=$(rss)
for i in $(seq 1 "$IDLE_DEPLOYMENTS"); do manifest "idle$i" 60s; deploy "idle$i" >/dev/null; done
sleep 1
after=$(rss)
[ -n "$before" ] && [ -n "$after" ] || fail "could not read the provider's RSS"
echo "provider RSS: $before KiB -> $after KiB after $IDLE_DEPLOYMENTS deployments at zero: $(( (after - before) / IDLE_DEPLOYMENTS )) KiB each"
