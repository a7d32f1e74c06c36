#!/usr/bin/env bash
# `qkv explain --html` in headless Chromium (Debian's chromium, installed by scripts/setup.sh).
# The walkthrough page: its script runs, the heatmap cells and the numbers are in the DOM, the
# console shows no message, hovering a cell shows its numbers (browser_hover.js, run by node), and
# a screenshot is saved. The model view of a tiny checkpoint (trained here for 2 steps): a
# thumbnail per layer x head, clicking opens the head (with its word table), hovering a token shows
# its weights, and the causal SVG's texts stay inside it (browser_model_view.js). The same for a GPT-2 folder (the
# golden 2-layer, 2-head folder on its ids) and its SVG.
# Usage: browser_test.sh QKV_EXECUTABLE SCREENSHOT_DIR
set -euo pipefail
qkv=$(readlink -f "$1")
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

# The model view: a 2-layer, 3-head character model.
for i in $(seq 30); do printf 'jane visits africa. jim sees tea! '; done >"$tmp/corpus.txt"
(cd "$tmp" && "$qkv" train --corpus corpus.txt --layers 2 --heads 3 --embed 24 --context 32 \
  --batch 4 --steps 2 --warmup 1 --eval-every 2 --checkpoint tiny.safetensors >/dev/null)
"$qkv" explain --checkpoint "$tmp/tiny.safetensors" --text "jane visits africa" \
  --html "$tmp/model.html" >/dev/null
"$qkv" explain --causal --svg "$tmp/causal.svg" >/dev/null
if node "$(dirname "$0")/browser_model_view.js" "$tmp/model.html" "$tmp/causal.svg" \
  "$tmp/model-profile" "$shots/explain_model_view.png"; then :; else fail=1; fi

echo "GPT-2 folder (qkv explain --model):"
gpt2="$(dirname "$0")/../data/golden/gpt2/gpt2_tiny_E32_H2_L2"
"$qkv" explain --model "$gpt2" --ids "$gpt2/input_ids.npy" --html "$tmp/gpt2.html" \
  --svg "$tmp/gpt2.svg" >/dev/null
if node "$(dirname "$0")/browser_model_view.js" "$tmp/gpt2.html" "$tmp/gpt2.svg" \
  "$tmp/gpt2-profile" "$shots/explain_gpt2_model_view.png"; then :; else fail=1; fi
exit $fail
