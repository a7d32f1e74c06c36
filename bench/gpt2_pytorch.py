#!/usr/bin/python3
"""GPT-2 small in PyTorch on the CPU, beside `qkv bench --gpt2` (docs/benchmarks.md): the same
shapes (L=12, H=12, E=768, F=3072, V=50257, 1024 positions, GELU's tanh form, tied head), random
N(0, 0.02) weights, fp32, eval mode, no autograd. Times one generation step with a KV cache
holding 128 tokens (the new token's q attends to the cached k, v) and the forward over 1024
tokens, with the same FLOP formulas as qkv's rows.

usage: /usr/bin/python3 bench/gpt2_pytorch.py [--threads 1,2] [--reps 5]
Prints one JSON object per row with qkv bench's keys (impl "torch-gpt2-step" / "torch-gpt2-prefill").
Needs Debian's python3-torch (PyTorch 1.13).
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

L, H, E, FF, V, P = 12, 12, 768, 3072, 50257, 1024
CACHED, PREFILL = 128, 1024


def make_weights():
    g = torch.Generator().manual_seed(5)
    n = lambda *s: torch.randn(*s, generator=g) * 0.02
    w = {"wte": n(V, E), "wpe": n(P, E), "blocks": []}
    for _ in range(L):
        w["blocks"].append({"c_attn": n(E, 3 * E), "b_attn": torch.zeros(3 * E),
                            "c_proj": n(E, E), "b_proj": torch.zeros(E),
                            "c_fc": n(E, FF), "b_fc": torch.zeros(FF),
                            "c_fc_proj": n(FF, E), "b_fc_proj": torch.zeros(E)})
    return w


def ln(x):
    return F.layer_norm(x, (E,), eps=1e-5)  # unit weight, zero bias, as qkv's bench model


def forward(w, ids, cache=None):
    """ids [T] -> logits [T, V]; cache: per layer [k, v] of [H, n, d], extended in place."""
    T = ids.shape[0]
    start = 0 if cache is None else cache[0][0].shape[1]
    x = w["wte"][ids] + w["wpe"][start:start + T]
    for l, b in enumerate(w["blocks"]):
        q, k, v = torch.addmm(b["b_attn"], ln(x), b["c_attn"]).split(E, dim=1)
        q, k, v = (t.view(T, H, E // H).transpose(0, 1) for t in (q, k, v))
        if cache is not None:
            if cache[l][0].shape[1]:
                k = torch.cat([cache[l][0], k], dim=1)
                v = torch.cat([cache[l][1], v], dim=1)
            cache[l] = [k, v]
        s = q @ k.transpose(1, 2) / math.sqrt(E // H)
        mask = torch.ones(T, k.shape[1], dtype=torch.bool).tril(k.shape[1] - T)
        a = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v
        x = x + torch.addmm(b["b_proj"], a.transpose(0, 1).reshape(T, E), b["c_proj"])
        h = F.gelu(torch.addmm(b["b_fc"], ln(x), b["c_fc"]), approximate="tanh")
        x = x + torch.addmm(b["b_fc_proj"], h, b["c_fc_proj"])
    return ln(x) @ w["wte"].t()


def median_ms(run, reps):
    run()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    w = make_weights()
    ids = torch.tensor([(t * 7919) % V for t in range(PREFILL)])
    matmul_weights = L * (4 * E * E + 2 * E * FF) + V * E
    weight_bytes = 4 * (L * (4 * E + 4 * E * E + 4 * E + 2 * E * FF + FF + E) + 2 * E + V * E + 2 * E)
    with torch.no_grad():
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            cache = [[torch.zeros(H, 0, E // H)] * 2 for _ in range(L)]
            forward(w, ids[:CACHED], cache)
            prefix = [list(c) for c in cache]

            def step():
                c = [list(p) for p in prefix]
                forward(w, ids[CACHED:CACHED + 1], c)

            ms = median_ms(step, max(args.reps, 20))
            flops = 2.0 * matmul_weights + 4.0 * L * E * (CACHED + 1)
            print(json.dumps({"impl": "torch-gpt2-step", "pass": "forward", "B": 1, "Hq": H,
                              "Hkv": H, "Nq": 1, "Nk": CACHED + 1, "d": E // H, "dv": E // H,
                              "causal": "bottom-right", "threads": threads, "ms": round(ms, 4),
                              "gflops": round(flops / (ms * 1e6), 3),
                              "tokens_per_s": round(1e3 / ms, 2), "weight_bytes": weight_bytes}),
                  flush=True)
            ms = median_ms(lambda: forward(w, ids), args.reps)
            flops = 2.0 * PREFILL * matmul_weights + 4.0 * L * E * PREFILL * (PREFILL + 1) / 2
            print(json.dumps({"impl": "torch-gpt2-prefill", "pass": "forward", "B": 1, "Hq": H,
                              "Hkv": H, "Nq": PREFILL, "Nk": PREFILL, "d": E // H, "dv": E // H,
                              "causal": "top-left", "threads": threads, "ms": round(ms, 3),
                              "gflops": round(flops / (ms * 1e6), 3),
                              "tokens_per_s": round(PREFILL * 1e3 / ms, 1)}), flush=True)


if __name__ == "__main__":
    main()
