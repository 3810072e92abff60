#!/usr/bin/env bash
# Installs every Debian package mercato needs to build, test and benchmark.
# Idempotent: when everything is already installed it prints nothing and exits 0.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang-format git
  # fuzzing (libFuzzer comes with clang's runtime)
  clang-14 libclang-rt-14-dev
  # libraries
  libboost-dev libssl-dev libsodium-dev libsqlite3-dev libsqlitecpp-dev sqlite3
  libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libarchive-dev libcurl4-openssl-dev
  # the single-machine cluster backend (src/runtime/runc) and its tests
  runc containernetworking-plugins iproute2 iptables docker-registry busybox-static
  # tests, the demo and its cleanup (b2sum: coreutils; setsid: util-linux)
  libgtest-dev libgmock-dev libbenchmark-dev jq curl procps coreutils util-linux
  # benchmarks (bench/): wrk drives the load; nginx is facade_bench's reference proxy; tar and
  # gzip are image_pull's reference unpack
  wrk nginx tar gzip
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages with a service (nginx) must not start it: the benchmarks run their own instance on a
# loopback port, and a system nginx on :80 is nothing we asked for. policy-rc.d answering 101
# ("action forbidden") is Debian's way to say so; we add one only for the install, and only when
# the machine has none (containers often ship one).
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# added by mercato scripts/setup.sh for one apt-get install\nexit 101\n' |
    $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# ...nor start it at the next boot.
if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null &&
  [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
echo "setup: done"
