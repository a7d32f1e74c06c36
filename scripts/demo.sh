#!/usr/bin/env bash
# The main job: set up, build, and walk through attention on the embedded "Write a poem" example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >&2
exec build/qkv explain "$@"
