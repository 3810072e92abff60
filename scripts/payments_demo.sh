#!/usr/bin/env bash
# The ledger-only walkthrough (issue 2): starts `mercatod --dev` in a scratch data
# dir, then walks a publisher and a provider through the payment flow with the real CLI:
# faucet -> provider registration -> escrow with a deposit -> metered claims -> exhaustion ->
# top-up -> close -> verification of the whole hash-chained log.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN_DIR:-build/bin}
WORK=$(mktemp -d /tmp/mercato-demo.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting mercatod --dev (embedded ledger + faucet)"
# A short close grace so the demo can show the refund.
printf 'ledger:\n  closeGraceMs: 2000\n' >"$WORK/node.yaml"
"$BIN/mercatod" --dev --no-provider --config "$WORK/node.yaml" --data-dir "$WORK/node" --listen 127.0.0.1:0 \
  2>"$WORK/node.log" &
PID=$!
for _ in $(seq 1 100); do [ -f "$WORK/node/node.json" ] && break; sleep 0.1; done
NODE=$(jq -r .url "$WORK/node/node.json")
echo "node at $NODE"
pub() { "$BIN/mercato" --home "$WORK/publisher" --node "$NODE" "$@"; }
prov() { "$BIN/mercato" --home "$WORK/provider" --node "$NODE" "$@"; }

step "Publisher and provider create keys"
pub keys create
prov keys create
PROV=$(prov keys show --json | jq -r .address)

step "Publisher takes 100 MER from the dev faucet"
pub ledger mint 100

step "Provider registers its machine and price table"
prov providers register --gateway https://127.0.0.1:8443 --cpu 4 --memory 8Gi --storage 100Gi \
  --price-cpu 0.01 --price-mem 0.002 --price-egress 0.05 --price-requests 0.01 --attr region=local
pub providers list

step "Publisher opens an escrow with 2 MER"
ESCROW=$(pub escrow open --provider "$PROV" --deposit 2 --json | jq -r .result.escrow)
pub escrow show "$ESCROW"

step "Provider claims metered usage: 60 cpu-seconds, 512 MiB for 60 s, 1000 requests"
prov escrow claim "$ESCROW" --cpu-ms 60000 --mem-mib-s 30720 --requests 1000

step "More usage than the deposit covers: the escrow becomes exhausted"
prov escrow claim "$ESCROW" --cpu-ms 300000 --mem-mib-s 153600 --requests 5000
pub escrow show "$ESCROW"

step "Publisher tops up: the provider is paid what it is owed and the escrow reopens"
pub escrow deposit "$ESCROW" 3
pub escrow show "$ESCROW"

step "Publisher closes; the provider has a grace period for a final claim"
pub escrow close "$ESCROW"
prov escrow claim "$ESCROW" --cpu-ms 310000 --mem-mib-s 153600 --requests 5000
sleep 3

step "Grace over: the rest of the deposit went back to the publisher"
pub escrow show "$ESCROW"
pub ledger balance
prov ledger balance

step "Transaction history and verification of the hash-chained log"
pub ledger history all
pub ledger verify
