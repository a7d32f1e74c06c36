#!/usr/bin/env bash
# `qkv explain --html` in headless Chromium (Debian's chromium, installed by scripts/setup.sh):
# the page's script runs, the heatmap cells and the numbers are in the DOM, the console shows no
# message, hovering a cell shows its numbers (browser_hover.js, run by node), and a screenshot is
# saved. Usage: browser_test.sh QKV_EXECUTABLE SCREENSHOT_DIR
set -euo pipefail
qkv=$1
shots=$2
for tool in chromium node; do
  command -v $tool >/dev/null || { echo "FAIL: $tool is not installed (scripts/setup.sh installs it)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$qkv" explain --html "$tmp/page.html" >/dev/null
# As root Chromium needs --no-sandbox; the rest keeps it off the network and quiet.
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking
       --disable-component-update --disable-sync --no-first-run --user-data-dir="$tmp/profile")
timeout 90 chromium "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$tmp/page.html" \
  >"$tmp/dom.html" 2>"$tmp/chromium.log"

fail=0
expect() {  # expect DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}
cells=$(grep -o '<rect class="cell' "$tmp/dom.html" | wc -l)
expect "the page's script ran to the end (body data-ready)" grep -q 'data-ready="true"' "$tmp/dom.html"
expect "9 heatmap cells (3 queries x 3 keys), found $cells" test "$cells" -eq 9
for number in '35.7%' '40.1%' '24.2%' '-0.6523' '1.0100' '89.6%'; do
  expect "the number $number is shown" grep -qF -- "$number" "$tmp/dom.html"
done
expect "the console shows no message" bash -c "! grep -F ':CONSOLE' '$tmp/chromium.log'"
if node "$(dirname "$0")/browser_hover.js" "$tmp/page.html" "$tmp/hover-profile"; then :; else fail=1; fi

mkdir -p "$shots"
timeout 90 chromium "${flags[@]}" --hide-scrollbars --window-size=1100,2600 \
  --screenshot="$shots/explain_page.png" "file://$tmp/page.html" >/dev/null 2>&1
expect "screenshot saved to $shots/explain_page.png" test -s "$shots/explain_page.png"
exit $fail
