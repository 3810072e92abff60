#!/usr/bin/env bash
# Drives a real `mercatod --dev` through the `mercato` CLI: keys, faucet, transfers, the provider
# registry, the escrow lifecycle, bad input, history, events, verify, and a clean SIGTERM.
source "$(dirname "$0")/lib.sh"

start_daemon "$WORK/node" --dev --no-provider --log-format json
# JSON logs: every daemon log line parses as JSON.
head -3 "$WORK/daemon.log" | while read -r line; do
  echo "$line" | jq -e .msg >/dev/null || fail "log line is not JSON: $line"
done

curl -sf "$NODE_URL/metrics" | matches '^# TYPE mercato_ledger_head_seq gauge' || fail "metrics"

# Keys.
m alice keys create --json >/dev/null
ALICE=$(m alice keys show --json | jq -r .address)
m bob keys create >/dev/null
BOB=$(m bob --json keys show | jq -r .address)
[ "$(stat -c %a "$WORK/alice/keys/default.key")" == "600" ] || fail "key file mode is not 0600"
MERCATO_PASSPHRASE=s3cret m carol keys create --encrypt >/dev/null
expect_fail 1 "wrong passphrase" env MERCATO_PASSPHRASE=nope "$BIN_DIR/mercato" --home "$WORK/carol" --node "$NODE_URL" keys show

# Faucet and transfers; amounts print as decimals.
m alice ledger mint 1000 >/dev/null
expect_eq "$(m alice ledger balance --json | jq -r .balance)" "1000000000" "alice balance after mint"
m alice ledger transfer "$BOB" 12.5 >/dev/null
m bob ledger balance | matches "12.5 MER" || fail "bob's human balance"
expect_eq "$(m bob ledger balance --json | jq -r .balance)" "12500000" "bob balance"

# Bad input: clear errors, non-zero exit, nothing changes.
expect_fail 1 "overdraft" m bob ledger transfer "$ALICE" 99
# One changed character in the middle of an address fails its checksum.
if [ "${BOB:10:1}" == "a" ]; then SWAP=b; else SWAP=a; fi
expect_fail 1 "checksum" m alice ledger transfer "${BOB:0:10}${SWAP}${BOB:11}" 1
expect_fail 1 "more than one" m alice ledger transfer "$BOB" 1.2.3
m dave keys create >/dev/null
expect_fail 1 "never received funds" m dave ledger balance
expect_fail 1 "never received funds" m dave ledger transfer "$BOB" 1
expect_fail 3 "unavailable" "$BIN_DIR/mercato" --home "$WORK/alice" --node http://127.0.0.1:1 ledger balance
expect_eq "$(m bob ledger balance --json | jq -r .balance)" "12500000" "bob balance unchanged"

# Provider registry.
m prov keys create >/dev/null
PROV=$(m prov keys show --json | jq -r .address)
m prov providers register --gateway https://127.0.0.1:8443 --cpu 4 --memory 8Gi --storage 100Gi \
  --price-cpu 0.001 --price-mem 0.0005 --price-egress 0.01 --price-requests 0.002 \
  --price-storage 0.0036 --attr region=eu-west --attr tier=community >/dev/null
expect_eq "$(m alice providers list --json | jq length)" "1" "provider count"
expect_eq "$(m alice providers show "$PROV" --json | jq -r .attributes.region)" "eu-west" "provider attr"
m alice providers list | sed -n 1p | matches "OWNER" || fail "providers table header"
expect_fail 1 "already registered" m prov providers register --gateway https://x:1

# Escrow lifecycle.
ESCROW=$(m alice escrow open --provider "$PROV" --deposit 50 --json | jq -r .result.escrow)
[[ "$ESCROW" == esc_* ]] || fail "escrow id '$ESCROW'"
expect_eq "$(m alice escrow show "$ESCROW" --json | jq -r .state)" "open" "escrow state"
# 10 cpu-seconds at 0.001 = 0.01 MER = 10000 micro.
expect_eq "$(m prov escrow claim "$ESCROW" --cpu-ms 10000 --json | jq -r .result.paid)" "10000" "claim paid"
expect_fail 1 "went down" m prov escrow claim "$ESCROW" --cpu-ms 5000
# 1 GiB of disk for 1000 s = 1024000 MiB-s at 0.0036 per GiB-hour = 0.001 MER = 1000 micro.
expect_eq "$(m prov escrow claim "$ESCROW" --cpu-ms 10000 --storage-mib-s 1024000 --json | jq -r .result.paid)" "1000" "storage claim paid"
expect_eq "$(m alice escrow show "$ESCROW" --json | jq -r .usage.storageMibSeconds)" "1024000" "storage usage"
expect_eq "$(m alice escrow show "$ESCROW" --json | jq -r .terms.storageGibHour)" "3600" "storage terms"
expect_fail 1 "storageMibSeconds went down" m prov escrow claim "$ESCROW" --cpu-ms 10000
expect_fail 1 "belongs to provider" m bob escrow claim "$ESCROW" --cpu-ms 20000
m alice escrow deposit "$ESCROW" 5 >/dev/null
expect_eq "$(m alice escrow show "$ESCROW" --json | jq -r .deposited)" "55000000" "deposited"
m alice escrow close "$ESCROW" >/dev/null
expect_eq "$(m alice escrow show "$ESCROW" --json | jq -r .state)" "closing" "state after close"
expect_eq "$(m alice escrow list --publisher "$ALICE" --json | jq length)" "1" "escrow list"

# History, events, verify.
m alice ledger history | matches "escrow.open" || fail "history lacks escrow.open"
expect_eq "$(m alice ledger events --json | grep -c '"type":"escrow.claimed"')" "2" "claimed events"
m alice ledger verify | matches "chain intact" || fail "remote verify"
expect_eq "$(m alice ledger verify --json | jq -r .ok)" "true" "verify json"

# Clean shutdown, then offline verify of the data dir.
stop_daemon || fail "mercatod exit code on SIGTERM"
grep -q "shutting down" "$WORK/daemon.log" || fail "no shutdown log line"
"$BIN_DIR/mercato" ledger verify --data-dir "$WORK/node" | matches "chain intact" || fail "offline verify"

# Restart: state survives.
start_daemon "$WORK/node" --dev --no-provider
expect_eq "$(m bob ledger balance --json | jq -r .balance)" "12500000" "bob balance after restart"
stop_daemon
echo "cli_test: all checks passed"
