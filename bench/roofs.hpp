// The two roofs a benchmark row is compared with: one square OpenBLAS sgemm of about the row's
// FLOPs (what the arithmetic could reach) and a plain read loop (what memory can deliver).
#pragma once

#include <cstdint>

#include "timing.hpp"

namespace qkv::bench {

// The side n of the square sgemm (M = N = K = n, 2·n^3 FLOPs) closest to `flops`: a multiple of
// 64, at least 1024 (docs/contracts.md section 6), at most 4096: sgemm's GFLOP/s is flat long
// before that, and the N = 32768 row would otherwise time a 2-TFLOP product.
int64_t sgemm_side(double flops);

// Median ms of C = A·B with n x n fp32 matrices on `threads` threads.
double time_sgemm(int64_t n, int threads, const timing_plan& plan);

// Bytes per second a vectorisable sum over a 128 MiB buffer (larger than the 32 MiB L3) reaches
// on `threads` threads: what a decode step reading K and V could reach at best.
double read_loop_bytes_per_s(int threads, const timing_plan& plan);

}  // namespace qkv::bench
