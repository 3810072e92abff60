# Shell helpers shared by scripts/demo.sh and the integration tests (tests/integration/lib.sh):
# a free loopback port, a loopback docker-registry, and the sample image pushed to it.
# REQUIRES: WORK (a scratch directory) and BIN_DIR (the build's bin/) set by the caller.

# freeport: prints a loopback port nobody listens on; returns 1 when it finds none.
freeport() {
  local p
  for p in $(shuf -i 20000-40000 -n 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free loopback port" >&2
  return 1
}

# start_registry: a docker-registry on loopback, storing in $WORK/registry; sets REG_PID and
# REG_PORT once it answers. A registry that dies at start (its port taken between freeport and
# its bind) is started again on another port. Returns 1 (with the registry's log on stderr) when
# none came up. The caller stops it (kill $REG_PID).
start_registry() {
  local attempt
  for attempt in 1 2 3; do
    REG_PORT=$(freeport) || return 1
    printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\nlog: {level: error}\n' \
      "$WORK/registry" "$REG_PORT" >"$WORK/registry.yml"
    docker-registry serve "$WORK/registry.yml" >>"$WORK/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 1 300); do  # up to 30 s: a loaded machine starts it slowly
      curl -sf -m 2 "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && return 0
      kill -0 "$REG_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  done
  echo "docker-registry did not come up (3 tries): $(tail -5 "$WORK/registry.log")" >&2
  return 1
}

# push_sample: pushes the sample image to the registry and prints its reference.
push_sample() {
  "$BIN_DIR/mercato-push-sample" "127.0.0.1:$REG_PORT" mercato/sample:v1
}
