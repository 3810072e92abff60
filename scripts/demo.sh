#!/usr/bin/env bash
# make demo: the main job on the embedded default. One `mercatod --dev` runs every role on this
# machine (embedded ledger with a faucet, a provider on the runc backend with its gateway and
# facade) next to a loopback docker-registry holding the sample image. A publisher then deploys
# examples/hello with the real CLI, requests it through the facade (the app starts from zero),
# watches it scale back to zero when idle, and sees the provider's claim paid on the ledger.
# The node keeps running until Ctrl-C. Scripts can read the lines `node: URL`, `app: URL`,
# `deployment: ID`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN_DIR:-build/bin}
if [ "$(id -u)" -ne 0 ]; then
  echo "make demo needs root: the provider runs containers with runc (try: sudo make demo)" >&2
  exit 1
fi
WORK=$(mktemp -d /tmp/mercato-demo.XXXXXX)
NODE_PID="" REG_PID=""
cleanup() {
  # The runc backend keeps containers across daemon restarts (it re-adopts them), so a demo that
  # ends must remove its deployments itself, or their containers, mounts and networks outlive
  # the work dir.
  if [ -n "$NODE_PID" ] && [ -n "${NODE:-}" ] && [ -f "$WORK/node/admin.token" ]; then
    local tok id
    tok=$(cat "$WORK/node/admin.token")
    for id in $(curl -sf -H "Authorization: Bearer $tok" "$NODE/runtime/v1/deployments" |
      jq -r '.[].id' 2>/dev/null); do
      curl -sf -X DELETE -H "Authorization: Bearer $tok" "$NODE/runtime/v1/deployments/$id" \
        >/dev/null || echo "warning: could not remove deployment $id" >&2
    done
  fi
  [ -n "$NODE_PID" ] && kill -TERM "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 0' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
source scripts/registry.sh  # freeport, start_registry, push_sample

step "Starting a loopback OCI registry with the sample image"
start_registry || exit 1
IMAGE=$(BIN_DIR=$BIN push_sample)
echo "pushed $IMAGE" >&2

step "Starting mercatod --dev (ledger + faucet, provider with runc backend, gateway, facade)"
# Its own session: a Ctrl-C on the terminal reaches only this script, whose cleanup removes the
# deployments through the node before stopping it.
setsid "$BIN/mercatod" --dev --data-dir "$WORK/node" --listen 127.0.0.1:0 2>"$WORK/node.log" &
NODE_PID=$!
for _ in $(seq 1 150); do [ -f "$WORK/node/node.json" ] && break; sleep 0.1; done
if [ ! -f "$WORK/node/node.json" ]; then cat "$WORK/node.log" >&2; exit 1; fi
NODE=$(jq -r .url "$WORK/node/node.json")
FACADE=$(jq -r .facadeUrl "$WORK/node/node.json")
PROVIDER=$(jq -r .address "$WORK/node/node.json")
echo "node: $NODE"
pub() { "$BIN/mercato" --home "$WORK/publisher" --node "$NODE" "$@"; }

step "Publisher: keys, and 100 MER from the dev faucet"
pub keys create >&2
pub ledger mint 100 >&2
pub providers list >&2

step "Publisher deploys examples/hello (manifest -> provider -> escrow -> sealed bundle)"
sed "s|image: .*|image: $IMAGE|" examples/hello/app.yaml >"$WORK/app.yaml"
RECEIPT=$(pub deploy "$WORK/app.yaml" --provider "$PROVIDER" --deposit 5 --json)
DEPLOYMENT=$(jq -r '.deploymentId // .receipt.deploymentId' <<<"$RECEIPT")
APP=$(jq -r '(.urls // .receipt.urls)[0]' <<<"$RECEIPT")
echo "deployment: $DEPLOYMENT"
echo "app: $APP"

step "Request through the facade: the app starts from zero"
time_start=$(date +%s%N)
curl -sS "$APP"
echo "first request took $(( ($(date +%s%N) - time_start) / 1000000 )) ms (cold start)" >&2
time_start=$(date +%s%N)
curl -sS "$APP" >/dev/null
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

step "Running. node: $NODE  app: $APP  (Ctrl-C stops the node cleanly)"
wait "$NODE_PID"
