"""The cost of calling qkv from Python (docs/python.md, "Overhead").

1. A tiny call (B=1, H=1, N=4, d=8): the median of 10,000 calls of
   qkv.scaled_dot_product_attention, each timed alone (what a per-call overhead budget means).
2. A large call (B=1, H=8, N=2048, d=64): the Python call against the same kernel called from
   C++ in the same process (qkv._qkv._time_forward_in_cpp: qkv::sdpa_forward on inputs
   converted once), in interleaved rounds so that both see the same machine load; the ratio of
   the medians.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py [--rounds 15] [--threads 0]
"""

import argparse
import os
import statistics
import time

import numpy as np

import qkv


def tiny(calls):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 4, 8), dtype=np.float32) for _ in range(3))
    sdpa = qkv.scaled_dot_product_attention
    for _ in range(1000):  # warm-up: thread pool, caches, allocator
        sdpa(q, k, v)
    clock = time.perf_counter_ns
    times = []
    for _ in range(calls):
        start = clock()
        sdpa(q, k, v)
        times.append(clock() - start)
    return statistics.median(times) / 1e3, np.percentile(times, 90) / 1e3


def large(rounds, threads):
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 8, 2048, 64), dtype=np.float32) for _ in range(3))
    qkv.scaled_dot_product_attention(q, k, v, threads=threads)  # warm-up
    py, cpp = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        qkv.scaled_dot_product_attention(q, k, v, threads=threads)
        py.append(time.perf_counter() - start)
        cpp += qkv._qkv._time_forward_in_cpp(q, k, v, 1, threads)
    return statistics.median(py) * 1e3, statistics.median(cpp) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0)
    a = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    median, p90 = tiny(a.calls)
    print(f"tiny call B=1 H=1 N=4 d=8: median {median:.2f} us, p90 {p90:.2f} us "
          f"({a.calls} calls)")
    py, cpp = large(a.rounds, a.threads)
    print(f"large call B=1 H=8 N=2048 d=64, threads={a.threads or 'default'}: "
          f"Python {py:.2f} ms, C++ {cpp:.2f} ms, Python/C++ {py / cpp:.4f} "
          f"(medians of {a.rounds} interleaved rounds)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
