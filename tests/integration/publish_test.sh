#!/usr/bin/env bash
# The publishing flow end to end, in separate processes: a ledger host (mercatod --dev
# --no-provider), a provider (mercatod --provider provider.yaml --ledger URL, runc backend) and
# the publisher's CLI, with the sample image in a loopback docker-registry. It covers deploy,
# the app served through the facade from zero, idle scale-to-zero, claims paid, kill -9 of the
# provider while the app serves (same URL after restart, claims continue, none twice),
# exhaustion (402), a top-up that restores service, and removal after the grace period.
# Needs root (runc): ctest labels runc, integration.
source "$(dirname "$0")/lib.sh"
# A command that fails outside a check would end the script silently under `set -e`: say where.
trap 'echo "FAIL: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (runc)"; exit 0; }

# Registry with the sample image.
start_registry || fail "no registry"
PROV_PID=""
trap 'kill $REG_PID 2>/dev/null; [ -n "$PROV_PID" ] && kill -TERM $PROV_PID 2>/dev/null; wait $REG_PID $PROV_PID 2>/dev/null; cleanup' EXIT
IMAGE=$(push_sample) || fail "push sample"

# Ledger host.
start_daemon "$WORK/ledger" --dev --no-provider
LEDGER=$NODE_URL

# Provider: a fixed facade port so the app keeps its URL across restarts; expensive requests so
# a small deposit runs out quickly; claims every second.
FACADE_PORT=$(freeport)
cat >"$WORK/provider.yaml" <<YAML
gateway: {listen: 127.0.0.1:0}
facade: {listen: 127.0.0.1:$FACADE_PORT, domain: apps.test}
attributes: {region: test}
capacity: {cpu: 1000m, memory: 1Gi, storage: 10Gi}
prices: {cpuSecond: 0.001, memGibSecond: 0, egressGib: 0, requests1k: 10}
claimIntervalSeconds: 1
gracePeriodSeconds: 4
YAML
subnet="10.$((100 + RANDOM % 150)).0.0/16"
printf 'runtime:\n  subnetPool: %s\n' "$subnet" >"$WORK/prov-node.yaml"
start_provider() {
  rm -f "$WORK/prov/node.json"
  "$BIN_DIR/mercatod" --config "$WORK/prov-node.yaml" --provider "$WORK/provider.yaml" \
    --ledger "$LEDGER" --data-dir "$WORK/prov" --listen 127.0.0.1:0 >>"$WORK/provider.log" 2>&1 &
  PROV_PID=$!
  for _ in $(seq 1 150); do
    [ -f "$WORK/prov/node.json" ] && return 0
    kill -0 "$PROV_PID" 2>/dev/null || { tail -20 "$WORK/provider.log" >&2; fail "provider exited"; }
    sleep 0.1
  done
  fail "provider did not start"
}
start_provider
PROVIDER=$(jq -r .address "$WORK/prov/node.json")

pub() { "$BIN_DIR/mercato" --home "$WORK/pub" --node "$LEDGER" "$@"; }
pub keys create >/dev/null
pub ledger mint 100 >/dev/null

# 1-8: deploy (manifest, provider from the registry, escrow, sealed bundle, receipt).
cat >"$WORK/app.yaml" <<YAML
kind: Application
name: hello
components:
  - name: web
    image: $IMAGE
    resources: {cpu: 250m, memory: 64Mi}
    expose: {port: 8080}
    scaling: {min: 0, max: 2, targetConcurrency: 10, idleTimeout: 2s}
YAML
OUT=$(pub deploy "$WORK/app.yaml" --select cheapest --deposit 0.2 --json) || fail "deploy"
DEP=$(jq -r '.receipt.deploymentId' <<<"$OUT")
ESCROW=$(jq -r '.receipt.escrowId' <<<"$OUT")
APP=$(jq -r '.receipt.urls[0]' <<<"$OUT")
[ -n "$DEP" ] && [ "$DEP" != null ] || fail "no deployment id in: $OUT"
expect_eq "$(jq -r '.receipt.provider' <<<"$OUT")" "$PROVIDER" "receipt provider"

# 9-11: requests arrive; the facade starts the app from zero; it answers.
body=$(curl -sf "$APP") || fail "first request through the facade"
[[ "$body" == hello\ from* ]] || fail "unexpected answer: $body"
# Host routing too.
curl -sf -H "Host: $DEP.apps.test" "http://127.0.0.1:$FACADE_PORT/" | matches "hello from" \
  || fail "host routing"

# Issue 12, finding 11: /metrics without the admin token has totals only, no deployment id; the
# admin token shows the per-deployment series.
PROV_URL=$(jq -r .url "$WORK/prov/node.json")
public=$(curl -sf "$PROV_URL/metrics") || fail "public /metrics"
grep -q 'mercato_facade_requests_total' <<<"$public" || fail "/metrics lacks the facade totals"
if grep -q "$DEP" <<<"$public"; then fail "public /metrics names deployment $DEP"; fi
curl -sf -H "Authorization: Bearer $(cat "$WORK/prov/admin.token")" "$PROV_URL/metrics" |
  matches "mercato_facade_requests_total{deployment=\"$DEP\"}" ||
  fail "admin /metrics lacks the per-deployment series"

# 12: idle -> back to zero.
zero=""
for _ in $(seq 1 40); do
  n=$(pub deployments status "$DEP" --json | jq '[.runtime.services[]?.instances[]?] | length') || n=
  [ "$n" = 0 ] && { zero=1; break; }
  sleep 0.5
done
[ -n "$zero" ] || fail "the app did not scale back to zero"

# 13-14: metered and claimed.
claimed=0
for _ in $(seq 1 40); do
  claimed=$(curl -sf "$LEDGER/ledger/v1/escrows/$ESCROW" | jq -r '.claimed') || claimed=0
  [ "$claimed" -gt 0 ] && break
  sleep 0.25
done
[ "$claimed" -gt 0 ] || fail "no claim was paid"

# kill -9 of the provider while the app serves; after the restart the URL still works and
# claims continue without paying anything twice.
curl -sf "$APP" >/dev/null || fail "request before the kill"
kill -KILL "$PROV_PID"; wait "$PROV_PID" 2>/dev/null || true
start_provider
curl -sf "$APP" | matches "hello from" || fail "the app lost its URL after the provider restart"
before=$(curl -sf "$LEDGER/ledger/v1/escrows/$ESCROW" | jq -r '.usage.requests')
sleep 2.5
after=$(curl -sf "$LEDGER/ledger/v1/escrows/$ESCROW" | jq -r '.usage.requests')
# The request made after the restart is claimed: claims continue.
[ "$after" -gt "$before" ] || fail "claims did not continue ($before -> $after)"
# Never more than was used: 4 requests were made. (Traffic counted after the last claim before
# the SIGKILL may be lost; it is persisted every claim interval: an under-claim, never double.)
[ "$after" -le 4 ] || fail "claimed $after requests, only 4 were made"

# 15: exhaustion -> 402; a top-up restores service; exhaustion again -> removed after grace.
status=""
for _ in $(seq 1 60); do
  status=$(curl -s -o /dev/null -w '%{http_code}' "$APP") || status=000
  [ "$status" = 402 ] && break
  sleep 0.2
done
expect_eq "$status" 402 "requests after exhaustion"
pub deployments topup "$DEP" 0.1 >/dev/null || fail "topup"
for _ in $(seq 1 40); do
  status=$(curl -s -o /dev/null -w '%{http_code}' "$APP") || status=000
  [ "$status" = 200 ] && break
  sleep 0.25
done
expect_eq "$status" 200 "requests after the top-up"
for _ in $(seq 1 80); do
  status=$(curl -s -o /dev/null -w '%{http_code}' "$APP") || status=000
  [ "$status" = 404 ] && break
  sleep 0.25
done
expect_eq "$status" 404 "the app after exhaustion and the grace period"
# The route goes first, then the runtime frees the app, then the record says removed.
for _ in $(seq 1 40); do
  st=$(pub deployments status "$DEP" --json) || st='{}'
  [ "$(jq -r '.state' <<<"$st")" = removed ] && break
  sleep 0.25
done
expect_eq "$(jq -r '.state' <<<"$st")" removed "deployment state (gateway: $(jq -r '.gatewayError // "ok"' <<<"$st"))"
escrow=$(curl -sf "$LEDGER/ledger/v1/escrows/$ESCROW")
[ "$(jq -r .claimed <<<"$escrow")" -le "$(jq -r .deposited <<<"$escrow")" ] || fail "overpaid"
echo "publish flow: OK"
