#!/usr/bin/env bash
# Issue 4 benchmarks on one machine (root): a ledger host, a provider (runc backend) and the CLI.
#   deploy latency : `mercato deploy` until the first 200 through the facade (warm image cache)
#   cold start     : first request to an app scaled to zero, p50/p99 over N, and a warm request
#   memory         : the provider's RSS per deployment scaled to zero
# Usage: sudo bench/publish_bench.sh [BIN_DIR] [COLD_RUNS] [IDLE_DEPLOYMENTS]
set -euo pipefail
BIN_DIR=${1:-build/bin}
COLD_RUNS=${2:-30}
IDLE_DEPLOYMENTS=${3:-20}
export BIN_DIR
source "$(dirname "$0")/../tests/integration/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "needs root (runc)" >&2; exit 2; }
freeport() {
  local p
  for p in $(shuf -i 20000-40000 -n 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
ms() { echo $(( $(date +%s%N) / 1000000 )); }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(p*(NR-1)+0.5)+1; print a[i]}'; }

REG_PORT=$(freeport)
printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\nlog: {level: error}\n' \
  "$WORK/registry" "$REG_PORT" >"$WORK/registry.yml"
docker-registry serve "$WORK/registry.yml" >/dev/null 2>&1 &
REG_PID=$!
PROV_PID=""
# Containers outlive their daemon by design: remove every deployment before stopping it.
remove_all() {
  local api token
  api=$(jq -r .url "$WORK/prov/node.json" 2>/dev/null) || return 0
  token=$(cat "$WORK/prov/admin.token" 2>/dev/null) || return 0
  for id in $(curl -s -H "Authorization: Bearer $token" "$api/runtime/v1/deployments" | jq -r '.[].id'); do
    curl -s -X DELETE -H "Authorization: Bearer $token" "$api/runtime/v1/deployments/$id" >/dev/null
  done
}
trap 'remove_all; kill $REG_PID 2>/dev/null; [ -n "$PROV_PID" ] && kill -TERM $PROV_PID 2>/dev/null; wait $REG_PID $PROV_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && break; sleep 0.1; done
IMAGE=$("$BIN_DIR/mercato-push-sample" "127.0.0.1:$REG_PORT" mercato/sample:v1)
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
pub() { "$BIN_DIR/mercato" --home "$WORK/pub" --node "$LEDGER" "$@"; }
pub keys create >/dev/null
pub ledger mint 100000 >/dev/null
manifest() {  # NAME IDLE
  printf 'kind: Application\nname: %s\ncomponents:\n  - name: web\n    image: %s\n    resources: {cpu: 100m, memory: 32Mi}\n    expose: {port: 8080}\n    scaling: {min: 0, max: 1, idleTimeout: %s}\n' \
    "$1" "$IMAGE" "$2" >"$WORK/$1.yaml"
}
deploy() { pub deploy "$WORK/$1.yaml" --select cheapest --deposit 10 --json | jq -r '.receipt.urls[0]'; }

# Warm the image cache.
manifest warm 1s
url=$(deploy warm); curl -sf "$url" >/dev/null

# Deploy latency.
lat=()
for i in 1 2 3 4 5; do
  manifest "app$i" 60s
  t0=$(ms)
  url=$(deploy "app$i")
  until curl -sf -o /dev/null "$url"; do sleep 0.005; done
  lat+=($(( $(ms) - t0 )))
done
echo "deploy -> first 200 (ms): ${lat[*]}"
printf '%s\n' "${lat[@]}" | pct 0.5 | sed 's/^/deploy latency p50 ms: /'

# Cold start vs warm through the facade (idleTimeout 1s).
manifest cold 1s
url=$(deploy cold); curl -sf "$url" >/dev/null
cold=() warm=()
for i in $(seq 1 "$COLD_RUNS"); do
  # Wait until the facade scaled it to zero.
  for _ in $(seq 1 100); do
    n=$(curl -s -H "Authorization: Bearer $(cat "$WORK/prov/admin.token")" \
      "$(jq -r .url "$WORK/prov/node.json")/runtime/v1/deployments" |
      jq --arg u "$url" '[.[] | select(("/d/" + .id + "/") as $p | $u | endswith($p)) | .services[].instances[]] | length')
    [ "$n" = 0 ] && break
    sleep 0.1
  done
  t=$(curl -s -o /dev/null -w '%{time_total}' "$url"); cold+=($(awk -v t="$t" 'BEGIN{printf "%.1f", t*1000}'))
  t=$(curl -s -o /dev/null -w '%{time_total}' "$url"); warm+=($(awk -v t="$t" 'BEGIN{printf "%.1f", t*1000}'))
done
echo "cold start p50 ms: $(printf '%s\n' "${cold[@]}" | pct 0.5)  p99 ms: $(printf '%s\n' "${cold[@]}" | pct 0.99)"
echo "warm request p50 ms: $(printf '%s\n' "${warm[@]}" | pct 0.5)  p99 ms: $(printf '%s\n' "${warm[@]}" | pct 0.99)"

# Memory per deployment scaled to zero.
rss() { awk '/VmRSS/ {print $2}' "/proc/$PROV_PID/status"; }
before=$(rss)
for i in $(seq 1 "$IDLE_DEPLOYMENTS"); do manifest "idle$i" 60s; deploy "idle$i" >/dev/null; done
sleep 1
after=$(rss)
echo "provider RSS: $before KiB -> $after KiB after $IDLE_DEPLOYMENTS deployments at zero: $(( (after - before) / IDLE_DEPLOYMENTS )) KiB each"
