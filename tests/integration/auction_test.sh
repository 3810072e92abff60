#!/usr/bin/env bash
# The marketplace end to end, in separate processes: a ledger host, two providers (runc backend)
# whose bid engines price with different `scale` rates, and the publisher's CLI. The publisher
# runs `mercato deploy --auction`: an order goes on the ledger, both providers bid, the cheaper
# bid wins, the lease's escrow funds the sealed-bundle deployment on the winner (at the bid's
# price, not the list price), and the app answers through the winner's facade. Then: order and
# bid listings, `mercato deployments exec` (plain, -i and -t) on the winner, its GET /status,
# and an auction nobody can serve (no bid: the order is closed and its deposit refunded). Needs root (runc): ctest labels runc, integration.
source "$(dirname "$0")/lib.sh"
trap 'echo "FAIL: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (runc)"; exit 0; }

# On failure also show the providers' logs.
eval "orig_$(declare -f fail)"
fail() {
  for f in "$WORK"/cheap.log "$WORK"/dear.log; do
    [ -f "$f" ] && { echo "--- $(basename "$f") (tail) ---" >&2; tail -15 "$f" >&2; }
  done
  orig_fail "$@"
}

start_registry || fail "no registry"
PIDS=()
# The runc backend keeps containers across daemon restarts, so remove every deployment through
# each provider's runtime API before stopping it; wait only for our own children (the ledger
# daemon is lib.sh's, which cleanup kills).
remove_deployments() {
  local name tok url id
  for name in cheap dear; do
    [ -f "$WORK/$name/admin.token" ] && [ -f "$WORK/$name/node.json" ] || continue
    tok=$(cat "$WORK/$name/admin.token")
    url=$(jq -r .url "$WORK/$name/node.json")
    for id in $(curl -sf -H "Authorization: Bearer $tok" "$url/runtime/v1/deployments" |
      jq -r '.[].id' 2>/dev/null); do
      curl -sf -X DELETE -H "Authorization: Bearer $tok" "$url/runtime/v1/deployments/$id" \
        >/dev/null || echo "warning: could not remove $id on $name" >&2
    done
  done
}
trap 'remove_deployments; kill $REG_PID 2>/dev/null; for p in "${PIDS[@]}"; do kill -TERM $p 2>/dev/null; done; wait $REG_PID "${PIDS[@]}" 2>/dev/null; cleanup' EXIT
IMAGE=$(push_sample) || fail "push sample"

start_daemon "$WORK/ledger" --dev --no-provider
LEDGER=$NODE_URL

# start_provider NAME CPU_SECOND_RATE: a provider whose list price is 0.01/cpu-s and whose bid
# engine bids the given rate.
start_provider() {
  local name=$1 rate=$2
  cat >"$WORK/$name.yaml" <<YAML
gateway: {listen: 127.0.0.1:0}
facade: {listen: 127.0.0.1:0, domain: apps.test}
attributes: {region: test}
capacity: {cpu: 2000m, memory: 2Gi, storage: 10Gi}
prices: {cpuSecond: 0.01, memGibSecond: 0, egressGib: 0, requests1k: 0}
bidding:
  bidTtlSeconds: 60
  strategy: scale
  scale: {cpuSecond: $rate, memGibSecond: 0, egressGib: 0, requests1k: 0}
YAML
  printf 'runtime:\n  subnetPool: 10.%d.0.0/16\n' $((100 + RANDOM % 150)) >"$WORK/$name-node.yaml"
  "$BIN_DIR/mercatod" --config "$WORK/$name-node.yaml" --provider "$WORK/$name.yaml" \
    --ledger "$LEDGER" --data-dir "$WORK/$name" --listen 127.0.0.1:0 >>"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 150); do
    [ -f "$WORK/$name/node.json" ] && return 0
    sleep 0.1
  done
  tail -20 "$WORK/$name.log" >&2
  fail "provider $name did not start"
}
start_provider cheap 0.0001
start_provider dear 0.0005
CHEAP=$(jq -r .address "$WORK/cheap/node.json")
DEAR=$(jq -r .address "$WORK/dear/node.json")
CHEAP_GW=$(jq -r .gatewayUrl "$WORK/cheap/node.json")

pub() { "$BIN_DIR/mercato" --home "$WORK/pub" --node "$LEDGER" "$@"; }
pub keys create >/dev/null
pub ledger mint 100 >/dev/null
# Bids lock a small deposit (the ledger's bidDeposit), so the providers need some funds.
pub ledger transfer "$CHEAP" 1 >/dev/null
pub ledger transfer "$DEAR" 1 >/dev/null
# Both providers registered before the order goes up.
registered=0
for _ in $(seq 1 150); do
  registered=$(pub providers list --json | jq length)
  [ "$registered" = 2 ] && break
  sleep 0.1
done
expect_eq "$registered" 2 "registered providers"
# Both bid engines watch the ledger once /status says so.
for name in cheap dear; do
  gw=$(jq -r .gatewayUrl "$WORK/$name/node.json")
  for _ in $(seq 1 100); do
    [ "$(pub provider status "$gw" --json 2>/dev/null | jq -r .bidEngine.running)" = true ] && break
    sleep 0.1
  done
done

cat >"$WORK/app.yaml" <<YAML
kind: Application
name: hello
components:
  - name: web
    image: $IMAGE
    resources: {cpu: 250m, memory: 64Mi}
    expose: {port: 8080}
    scaling: {min: 0, max: 2, targetConcurrency: 10, idleTimeout: 30s}
YAML
OUT=$(pub deploy "$WORK/app.yaml" --auction --wait 5s --select cheapest --deposit 5 --json) \
  || fail "deploy --auction"
expect_eq "$(jq -r '.receipt.provider' <<<"$OUT")" "$CHEAP" "winning provider"
ESCROW=$(jq -r '.receipt.escrowId' <<<"$OUT")
APP=$(jq -r '.receipt.urls[0]' <<<"$OUT")
# The lease's terms are the winning bid's price (100 micro/cpu-s), not the list price.
expect_eq "$(jq -r '.receipt.terms.cpuSecond' <<<"$OUT")" 100 "lease terms"
expect_eq "$(curl -sf "$LEDGER/ledger/v1/escrows/$ESCROW" | jq -r .deposited)" 5000000 "escrow deposit"
LEASE=$(curl -sf "$LEDGER/ledger/v1/leases/$ESCROW") || fail "no lease $ESCROW on the ledger"
ORDER=$(jq -r .order <<<"$LEASE")
body=$(curl -sf "$APP") || fail "request through the winner's facade"
[[ "$body" == hello\ from* ]] || fail "unexpected answer: $body"

# The publisher's CLI exec on the winner's runc instance (idleTimeout 30s keeps it up): output
# and exit code without -i; stdin and the exit code with -i (WebSocket); a real terminal with -t,
# run under script(1) so the CLI has a pty of a known size and sends it to the remote one. (The
# sample image links only a few busybox applets; the others are called through busybox.)
DEP=$(jq -r '.receipt.deploymentId' <<<"$OUT")
expect_eq "$(pub deployments exec "$DEP" -- echo hi)" hi "exec output"
expect_eq "$(printf 'line one\nline two\n' | pub deployments exec -i "$DEP" -- sh -c 'read a; read b; echo "$b"')" \
  "line two" "exec -i stdin"
rc=0
pub deployments exec -i "$DEP" -- sh -c 'exit 7' </dev/null || rc=$?
expect_eq "$rc" 7 "exec -i exit code"
PUB_CLI="$BIN_DIR/mercato --home $WORK/pub --node $LEDGER"
# script(1) passes its stdin's EOF on as a NUL byte, which the remote terminal echoes as "^@"
# wherever it lands in the output: those two characters are removed before matching.
TTY_OUT=$(script -qec "stty rows 31 cols 97; $PUB_CLI deployments exec -t $DEP -- sh -c 'busybox stty size; busybox tty'" \
  /dev/null </dev/null | tr -d '\r' | sed 's/\^@//g') || fail "exec -t: $TTY_OUT"
matches -x "31 97" <<<"$TTY_OUT" || fail "exec -t: the remote terminal is not 31x97: $TTY_OUT"
matches -x "/dev/pts/[0-9]*" <<<"$TTY_OUT" || fail "exec -t: the remote has no tty: $TTY_OUT"
rc=0
script -qec "$PUB_CLI deployments exec -t $DEP -- sh -c 'exit 3'" /dev/null </dev/null >/dev/null || rc=$?
expect_eq "$rc" 3 "exec -t exit code"

# Listings: the order is matched; the cheap bid won, the dear one lost.
expect_eq "$(pub orders show "$ORDER" --json | jq -r .order.state)" matched "order state"
BIDS=$(pub bids list --order "$ORDER" --json)
expect_eq "$(jq -r --arg p "$CHEAP" '.[] | select(.provider == $p) | .state' <<<"$BIDS")" won "cheap bid"
expect_eq "$(jq -r --arg p "$DEAR" '.[] | select(.provider == $p) | .state' <<<"$BIDS")" lost "dear bid"
pub orders list | matches "$ORDER" || fail "orders list does not show $ORDER"

# The winner's status: one active lease, the bid engine on, one manifest active.
ST=$(pub provider status "$CHEAP_GW" --json) || fail "provider status"
expect_eq "$(jq -r .cluster.activeLeases <<<"$ST")" 1 "active leases"
expect_eq "$(jq -r .bidEngine.enabled <<<"$ST")" true "bid engine enabled"
expect_eq "$(jq -r .manifests.active <<<"$ST")" 1 "active manifests"
pub provider status "$CHEAP" | matches "leases       1 active" || fail "human status"

# Nobody can serve region=mars: no bid, the order is closed and the deposit comes back.
before=$(pub ledger balance --json | jq -r .balance)
expect_fail 1 "no provider bid" pub deploy "$WORK/app.yaml" --auction --wait 2s --attr region=mars
after=$(pub ledger balance --json | jq -r .balance)
expect_eq "$after" "$before" "balance after an auction without bids"
echo "PASS: auction"
