#!/usr/bin/env bash
# Installs what qkv needs from Debian's packages (only the missing ones), then configures and
# builds it in build/ (or $QKV_BUILD_DIR). Safe to run again: it does only what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(cmake g++ make pkg-config libgtest-dev libgmock-dev libbenchmark-dev
          libopenblas-openmp-dev libdnnl-dev libhwy-dev libcli11-dev nlohmann-json3-dev libicu-dev libxml2-utils
          libopenmpi-dev openmpi-bin
          clang libclang-rt-dev libomp-dev
          chromium nodejs
          python3-dev pybind11-dev python3-pybind11 python3-numpy python3-pytest python3-torch
          python3-venv python3-pip python3-setuptools
          fortunes fortunes-min)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "qkv setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

build=${QKV_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=${QKV_BUILD_TYPE:-Release} ${QKV_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
