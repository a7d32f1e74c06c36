// The physical roof of every row: the FMA throughput of a loop that keeps its operands in
// registers, per instruction set the CPU runs and per thread count, measured in the same process
// as the rows it is the roof of (the clock under load, and under AVX-512, is part of the figure).
#pragma once

#include <string>
#include <vector>

#include "timing.hpp"

namespace qkv::bench {

struct fma_peak {
  std::string isa;  // "avx2" (AVX2+FMA, 8 lanes) or "avx512f" (16 lanes)
  int chains = 0;   // independent accumulators in the loop
  double ms = 0, flops = 0, gflops = 0;
};

// The instruction sets this CPU runs, each timed on `threads` threads (all running the loop).
std::vector<fma_peak> measure_fma_peaks(int threads, const timing_plan& plan);

}  // namespace qkv::bench
