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
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev jq curl procps wrk
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
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
