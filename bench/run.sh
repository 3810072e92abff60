#!/usr/bin/env bash
# Runs the benchmarks against the current build and prints one JSON line per run.
# Record the figures in bench/RESULTS.md with the date and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN_DIR:-build/bin}
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -r)"
"$BIN/ledger_tps" --mercatod "$BIN/mercatod" --client wrk --seconds 6 --wrk-accounts 100000 --connections 64
"$BIN/ledger_tps" --mercatod "$BIN/mercatod" --mode single --connections 64
"$BIN/ledger_tps" --mercatod "$BIN/mercatod" --mode batch --connections 8 --batch 250
"$BIN/ledger_micro_bench"
