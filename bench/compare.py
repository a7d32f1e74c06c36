#!/usr/bin/env python3
"""Joins `qkv bench --format json` and ort-bench JSON lines on (shape, causal, threads, pass) and
prints a table of GFLOP/s with the ratio of each row to a chosen baseline impl (docs/benchmarks.md).

usage: bench/compare.py QKV.jsonl ORT.jsonl [--baseline ort-mha-flash] [--impls fused,blas,...]
"""
import argparse
import json
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
    table = defaultdict(dict)  # (shape..., threads) -> impl -> gflops
    for path in a.files:
        for r in rows(path):
            key = (r["pass"], r["B"], r["Hq"], r["Hkv"], r["Nq"], r["Nk"], r["d"], r["causal"], r["threads"])
            table[key][r["impl"]] = r["gflops"]
    head = f"{'pass':8} {'B,Hq,Hkv,Nq,Nk,d':22} {'causal':12} {'T':>2} " + " ".join(f"{i:>15}" for i in impls)
    print(head + f"   (GFLOP/s; x = ratio to {a.baseline})")
    for key in sorted(table, key=lambda k: (k[0], k[8], k[1:8])):
        got = table[key]
        if not any(i in got for i in impls):
            continue
        base = got.get(a.baseline)
        cells = []
        for i in impls:
            g = got.get(i)
            cell = "-" if g is None else f"{g:.1f}" + (f" x{g / base:.2f}" if base else "")
            cells.append(f"{cell:>15}")
        shape = ",".join(str(x) for x in key[1:7])
        print(f"{key[0]:8} {shape:22} {key[7]:12} {key[8]:>2} " + " ".join(cells))


if __name__ == "__main__":
    main()
