#!/usr/bin/env bash
# Every test: set up, build, and run the whole suite with ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
ctest --test-dir "${QKV_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
