# Shared helpers for the integration scripts: start/stop a real mercatod and run the CLI.
# REQUIRES: BIN_DIR (the build's bin/) in the environment.
set -euo pipefail

: "${BIN_DIR:?BIN_DIR must point at the build bin directory}"
WORK=$(mktemp -d /tmp/mercato-it.XXXXXX)
chmod 711 "$WORK"  # container root (an unprivileged uid, user namespaces) passes through it
DAEMON_PID=""
NODE_URL=""

cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# matches [grep flags] PATTERN: grep for a pipeline's end that reads all its input. `grep -q` exits at
# the first match, and under pipefail the producer's SIGPIPE then fails the whole test.
matches() { grep "$@" >/dev/null; }

fail() {
  echo "FAIL: $*" >&2
  [ -f "$WORK/daemon.log" ] && { echo "--- daemon log (tail) ---" >&2; tail -20 "$WORK/daemon.log" >&2; }
  exit 1
}

# start_daemon DATA_DIR [extra mercatod flags...]: starts mercatod on a free port, waits for it.
start_daemon() {
  local dir=$1; shift
  rm -f "$dir/node.json"
  "$BIN_DIR/mercatod" --data-dir "$dir" --listen 127.0.0.1:0 "$@" >>"$WORK/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 100); do
    if [ -f "$dir/node.json" ]; then
      NODE_URL=$(jq -r .url "$dir/node.json")
      curl -sf "$NODE_URL/healthz" >/dev/null && return 0
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "mercatod exited during start-up"
    sleep 0.1
  done
  fail "mercatod did not come up within 10 s"
}

stop_daemon() {
  kill -TERM "$DAEMON_PID"
  for _ in $(seq 1 100); do
    kill -0 "$DAEMON_PID" 2>/dev/null || { wait "$DAEMON_PID"; return $?; }
    sleep 0.1
  done
  fail "mercatod did not stop within 10 s of SIGTERM"
}

# m HOME_NAME args...: runs the CLI as the user whose home is $WORK/HOME_NAME.
m() {
  local who=$1; shift
  "$BIN_DIR/mercato" --home "$WORK/$who" --node "$NODE_URL" "$@"
}

expect_eq() { [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"; }

# expect_fail CODE FRAGMENT cmd...: the command must exit with CODE and say FRAGMENT on stderr.
expect_fail() {
  local code=$1 fragment=$2; shift 2
  set +e
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  set -e
  [ "$rc" == "$code" ] || fail "'$*' exited $rc, expected $code (stderr: $(cat "$WORK/err"))"
  grep -q -- "$fragment" "$WORK/err" || fail "'$*' stderr lacks '$fragment': $(cat "$WORK/err")"
}

# freeport, start_registry, push_sample (shared with scripts/demo.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/registry.sh"
