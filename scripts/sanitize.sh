#!/usr/bin/env bash
# The unit, golden and CLI tests built with AddressSanitizer and UndefinedBehaviorSanitizer
# (a Debug build in build-asan/). Left out: tests labelled "long" (package install, benchmarks).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
QKV_BUILD_DIR=build-asan QKV_BUILD_TYPE=Debug \
  QKV_CMAKE_ARGS="-DQKV_SANITIZE=address,undefined -DQKV_BUILD_BENCH=OFF -DQKV_BUILD_EXAMPLES=OFF" \
  scripts/setup.sh
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -LE long
