#!/usr/bin/env python3
"""Joins `qkv bench --format json` and ort-bench JSON lines on (shape, causal, threads, pass) and
prints a table of GFLOP/s with the ratio of each row to a chosen baseline impl (docs/benchmarks.md).
Given several files of interleaved runs (bench/vs_ort.sh), each cell is the median over the runs
of that impl, and the ratio is the median of the per-round ratios when the rounds pair up.

usage: bench/compare.py FILE.jsonl... [--baseline ort-mha-flash] [--impls fused,blas,...]
"""
import argparse
import json
import statistics
from collections import defaultdict


def rows(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                yield json.loads(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--baseline", default="ort-mha-flash")
    ap.add_argument("--impls", default="fused,blas,sgemm,ort-mha-flash,ort-attention,ort-composition")
    a = ap.parse_args()
    impls = a.impls.split(",")
    # (shape..., threads) -> impl -> [gflops of each run, in file order]
    table = defaultdict(lambda: defaultdict(list))
    for path in a.files:
        for r in rows(path):
            key = (r["pass"], r["B"], r["Hq"], r["Hkv"], r["Nq"], r["Nk"], r["d"], r["causal"], r["threads"])
            table[key][r["impl"]].append(r["gflops"])
    head = f"{'pass':8} {'B,Hq,Hkv,Nq,Nk,d':22} {'causal':12} {'T':>2} " + " ".join(f"{i:>15}" for i in impls)
    print(head + f"   (GFLOP/s, median over runs; x = ratio to {a.baseline})")
    for key in sorted(table, key=lambda k: (k[0], k[8], k[1:8])):
        got = table[key]
        if not any(i in got for i in impls):
            continue
        base = got.get(a.baseline)
        cells = []
        for i in impls:
            runs = got.get(i)
            if not runs:
                cells.append(f"{'-':>15}")
                continue
            cell = f"{statistics.median(runs):.1f}"
            if base:
                # Rounds pair up run by run when both impls ran in every round: the median of
                # the ratios taken side by side; otherwise the ratio of the medians.
                ratios = [g / b for g, b in zip(runs, base)] if len(runs) == len(base) else \
                    [statistics.median(runs) / statistics.median(base)]
                cell += f" x{statistics.median(ratios):.2f}"
            cells.append(f"{cell:>15}")
        shape = ",".join(str(x) for x in key[1:7])
        print(f"{key[0]:8} {shape:22} {key[7]:12} {key[8]:>2} " + " ".join(cells))


if __name__ == "__main__":
    main()
