#!/usr/bin/env bash
# integration.demo_signals: `make demo` (scripts/demo.sh) stops everything it started when it is
# told to stop, however it is told (issue 11): one SIGTERM, two SIGTERMs 0.2 s apart, a TERM and
# then more TERMs once its cleanup has started (the case that used to leave mercatod and its
# deployment running), and a Ctrl-C (SIGINT to its process group, as a terminal sends it). Each run waits for the demo's `deployment:` line, signals it, and then
# checks that the demo exited 0 within 90 s and left nothing of its own: no process naming its
# work dir (mercatod, shims, the registry), no runc container under its runc root, no network
# namespace or cgroup with its runtime's name prefix, none of its deployments' bridges nor an
# iptables rule naming them, no mount under its work dir, and the work dir itself removed. It
# also checks the `home: DIR` line: the publisher's client home, usable from another shell
# while the demo runs.
#
# The checks are scoped to what this demo created, so other tests may run at the same time
# (ctest -j); integration.leftovers checks the whole host after all of them.
# Needs root (runc): ctest labels integration, runc; exits 77 (skipped) without root.
# DEMO_TEST_KEEP=1 keeps the demos' output (under /tmp/mercato-demotest.*); DEMO_TEST_CASES runs
# a subset of the cases; DEMO_SCRIPT checks another demo script.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (the demo runs containers with runc)"; exit 77; }
: "${BIN_DIR:?BIN_DIR must point at the build bin directory}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${DEMO_SCRIPT:-$ROOT/scripts/demo.sh}  # another demo script to check (to see this test fail)
T=$(mktemp -d /tmp/mercato-demotest.XXXXXX)
chmod 711 "$T"  # above the demo's data dir: container root (user namespaces) must pass through
DEMO_PID=""
# A demo still running when this test ends (a failed check) gets one TERM and 90 s, then KILL.
finish() {
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -TERM "$DEMO_PID" 2>/dev/null
    for _ in $(seq 1 900); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$DEMO_PID" 2>/dev/null || true
  fi
  if [ -n "${DEMO_TEST_KEEP:-}" ]; then echo "kept $T"; else rm -rf --one-file-system "$T"; fi
}
trap finish EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -n "${RUN:-}" ]; then
    echo "--- demo stdout ---" >&2; cat "$RUN/out" >&2
    echo "--- demo stderr (tail) ---" >&2; tail -30 "$RUN/err" >&2
  fi
  exit 1
}

# The demo's own resources, found from its work dir (see scripts/demo.sh).
processes_naming() {  # DIR: pids whose command line contains DIR
  local d args
  for d in /proc/[0-9]*; do
    mapfile -d '' args 2>/dev/null <"$d/cmdline" || continue
    [[ "${args[*]}" == *"$1"* ]] && echo "${d#/proc/}: ${args[*]:0:3}"
  done
  return 0
}

# run_case NAME SIGNAL...: one demo, stopped by the signals (TERM, TERM TERM, or INT to its
# process group), then checked.
run_case() {
  local name=$1; shift
  RUN="$T/$name"
  mkdir -p -m 711 "$RUN" "$RUN/tmp"
  echo "== $name: starting the demo"
  # As a terminal's foreground job: its own process group (setsid), and SIGINT not ignored. A
  # background job of a script starts with SIGINT ignored, which bash then can't trap; perl
  # (Essential in Debian) puts the default action back before exec.
  TMPDIR="$RUN/tmp" BIN_DIR="$BIN_DIR" setsid perl -e '$SIG{INT} = $SIG{QUIT} = "DEFAULT";
    exec @ARGV or die "exec: $!"' "$DEMO" >"$RUN/out" 2>"$RUN/err" </dev/null &
  DEMO_PID=$!
  local i
  for ((i = 0; i < 1800; i++)); do  # 180 s: registry, node, keys, faucet, deploy
    grep -q '^deployment: ' "$RUN/out" && break
    kill -0 "$DEMO_PID" 2>/dev/null || fail "$name: the demo exited before its deployment: line"
    sleep 0.1
  done
  grep -q '^deployment: ' "$RUN/out" || fail "$name: no deployment: line within 180 s"

  local home work rt prefix bridges
  home=$(sed -n 's/^home: //p' "$RUN/out")
  [ -n "$home" ] || fail "$name: the demo printed no home: line"
  [ -d "$home/keys" ] || fail "$name: home: $home has no keys/ (not the publisher's client home)"
  # From another shell, as the README says: the CLI with that home (and --node only when the
  # node is not on the CLI's default address) shows the deployment.
  local id node nodeflag=()
  id=$(sed -n 's/^deployment: //p' "$RUN/out")
  node=$(sed -n 's/^node: //p' "$RUN/out")
  [ "$node" = "http://127.0.0.1:7400" ] || nodeflag=(--node "$node")
  "$BIN_DIR/mercato" --home "$home" "${nodeflag[@]}" deployments status "$id" --json \
    >"$RUN/status.json" 2>"$RUN/status.err" ||
    fail "$name: mercato --home $home ${nodeflag[*]} deployments status $id: $(cat "$RUN/status.err")"
  grep -q "$id" "$RUN/status.json" || fail "$name: the status does not name $id: $(cat "$RUN/status.json")"
  work=${home%/publisher}
  case "$work" in "$RUN/tmp/"*) ;; *) fail "$name: home $home is not under the demo's TMPDIR" ;; esac
  rt="$work/node/runtime"
  prefix="mc$(printf '%s' "$rt" | b2sum -l 256 | cut -c1-6)"
  bridges=""
  for ((i = 0; i < 100; i++)); do  # the provider may still be creating it
    bridges=$(sqlite3 -readonly "$rt/runtime.db" 'SELECT bridge FROM deployments' 2>/dev/null || true)
    [ -n "$bridges" ] && break
    sleep 0.1
  done
  [ -n "$bridges" ] || fail "$name: the runtime has no deployment 10 s after the demo printed its id"
  echo "   work dir $work, runtime prefix $prefix, bridges: $bridges"

  kill -0 "$DEMO_PID" 2>/dev/null || fail "$name: the demo ended by itself before the signal"
  local t0=$SECONDS
  case "$*" in
    "TERM") kill -TERM "$DEMO_PID" ;;
    "TERM TERM") kill -TERM "$DEMO_PID"; sleep 0.2; kill -TERM "$DEMO_PID" 2>/dev/null || true ;;
    "TERM CLEANUP-TERM")
      # More TERMs, every 50 ms, once the cleanup has started and until the demo is gone: the
      # case of the issue, where the second one cut the cleanup short.
      kill -TERM "$DEMO_PID"
      for ((i = 0; i < 600; i++)); do grep -q '^demo: stopping' "$RUN/err" && break; sleep 0.1; done
      grep -q '^demo: stopping' "$RUN/err" || fail "$name: the demo did not start stopping in 60 s"
      local sent=0
      for ((i = 0; i < 1200; i++)); do
        kill -TERM "$DEMO_PID" 2>/dev/null || break
        sent=$((sent + 1))
        sleep 0.05
      done
      echo "   $sent more TERMs landed during the cleanup"
      [ "$sent" -gt 0 ] || fail "$name: the cleanup ended before a second TERM could land" ;;
    "INT") kill -INT -- "-$DEMO_PID" ;;
    *) fail "unknown signals: $*" ;;
  esac
  local rc=0
  for ((i = 0; i < 900; i++)); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DEMO_PID" 2>/dev/null && fail "$name: the demo still runs 90 s after SIG$*"
  wait "$DEMO_PID" || rc=$?
  DEMO_PID=""
  [ "$rc" -eq 0 ] || fail "$name: the demo exited $rc after SIG$*, expected 0"

  local left
  left=$(processes_naming "$work")
  [ -z "$left" ] || fail "$name: processes still running from the demo: $left"
  [ -z "$(ls -A "$RUN/tmp")" ] || fail "$name: the work dir is still there: $(ls -A "$RUN/tmp")"
  left=$(awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo)
  [ -z "$left" ] || fail "$name: mounts left under the work dir: $left"
  left=$(ls /run/netns 2>/dev/null | grep "^$prefix-" || true)
  [ -z "$left" ] || fail "$name: network namespaces left: $left"
  left=$(find /sys/fs/cgroup -type d -name "$prefix-*" 2>/dev/null || true)
  [ -z "$left" ] || fail "$name: cgroups left: $left"
  local br
  for br in $bridges; do
    ! ip link show "$br" >/dev/null 2>&1 || fail "$name: bridge $br is still there"
    left=$( (iptables -w -t nat -S; iptables -w -t filter -S) 2>/dev/null | grep -F -- "$br" || true)
    [ -z "$left" ] || fail "$name: iptables rules still name $br: $left"
  done
  # The normal path removes everything through the node; the fallbacks say so when they act.
  if grep -E '^demo: (killing process|removing (container|network namespace|cgroup|bridge|iptables))' \
    "$RUN/err" >&2; then
    echo "   note: the cleanup needed its fallback sweep (above)" >&2
  fi
  echo "   ok: the demo stopped in $((SECONDS - t0)) s and left nothing (SIG$*)"
}

cases=${DEMO_TEST_CASES:-term term_twice term_during_cleanup ctrl_c}  # a subset, to debug one
for c in $cases; do
  case $c in
    term) run_case term TERM ;;
    term_twice) run_case term_twice TERM TERM ;;
    term_during_cleanup) run_case term_during_cleanup TERM CLEANUP-TERM ;;
    ctrl_c) run_case ctrl_c INT ;;
    *) fail "unknown case $c" ;;
  esac
done
echo "PASS"
