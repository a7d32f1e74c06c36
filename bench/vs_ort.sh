#!/usr/bin/env bash
# qkv's fused kernel beside ONNX Runtime's CPU attention (an ort-bench executable, which times
# ONNX Runtime's attention and prints the JSON lines of `qkv bench --format json`), in
# interleaved rounds on the same shapes and thread counts, then one table of medians and
# side-by-side ratios (bench/compare.py). docs/benchmarks.md explains the rows.
#
# usage: bench/vs_ort.sh [--rounds 3] [--threads 1,2] [--shapes "B,H,Nq,Nk,d[,causal]; ..."]
#                        [--qkv build/qkv] --ort PATH/ort-bench [--out DIR]
# --ort defaults to $QKV_ORT_BENCH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=3 threads=1,2 shapes="1,8,2048,2048,64; 1,4,4096,4096,128"
qkv="$here/../build/qkv" ort=${QKV_ORT_BENCH:-} out=""
while (($#)); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --qkv) qkv=$2; shift 2 ;;
    --ort) ort=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "vs_ort.sh: unknown argument '$1' (see the usage line in $0)" >&2; exit 2 ;;
  esac
done
[[ -x "$qkv" ]] || { echo "vs_ort.sh: --qkv $qkv is not an executable (build first)" >&2; exit 2; }
[[ -n "$ort" ]] || { echo "vs_ort.sh: --ort PATH (or QKV_ORT_BENCH) is required: the ort-bench executable" >&2; exit 2; }
[[ -x "$ort" ]] || { echo "vs_ort.sh: --ort $ort is not an executable" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "vs_ort.sh: --rounds must be a positive integer, got '$rounds'" >&2; exit 2; }
out=${out:-$(mktemp -d)}
mkdir -p "$out"

# ort-bench takes "B,H,Nq,Nk,d[,causal]"; qkv bench takes "B,Hq,Hkv,Nq,Nk,d[,dv][,causal]".
IFS=';' read -ra list <<<"$shapes"
for ((r = 1; r <= rounds; ++r)); do
  echo "round $r of $rounds: ort-bench, then qkv bench" >&2
  "$ort" --threads "$threads" --shapes "$shapes" >"$out/ort.$r.jsonl"
  : >"$out/qkv.$r.jsonl"
  for s in "${list[@]}"; do
    s=$(echo "$s" | tr -d ' ')
    [[ -n "$s" ]] || continue
    IFS=',' read -r B H Nq Nk d causal <<<"$s"
    [[ "${causal:-}" == causal ]] && causal=top-left
    shape="$B,$H,$H,$Nq,$Nk,$d${causal:+,$causal}"
    "$qkv" bench --shape "$shape" --threads "$threads" --impl fused,sgemm --format json \
      >>"$out/qkv.$r.jsonl"
  done
done
echo "raw JSON lines: $out" >&2
python3 "$here/compare.py" "$out"/ort.*.jsonl "$out"/qkv.*.jsonl --impls fused,sgemm,ort-mha-flash,ort-attention,ort-composition
