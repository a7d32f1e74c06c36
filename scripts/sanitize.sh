#!/usr/bin/env bash
# The unit, golden and CLI tests built with AddressSanitizer and UndefinedBehaviorSanitizer
# (build type Sanitize: -O1 with line tables, in build-asan/). Left out: tests labelled "long" (package install, slow
# training runs), "browser" (Chromium renders a page; none of our code runs in it), and the MPI
# ring tests (Open MPI's own allocations trip LeakSanitizer), built without MPI here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
QKV_BUILD_DIR=build-asan QKV_BUILD_TYPE=Sanitize \
  QKV_CMAKE_ARGS="-DQKV_SANITIZE=address,undefined -DQKV_BUILD_BENCH=OFF -DQKV_BUILD_EXAMPLES=OFF -DQKV_WITH_MPI=OFF" \
  bash scripts/setup.sh
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -LE "long|browser"
