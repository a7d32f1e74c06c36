// The `peak` rows: the FMA loops of peak_loop.hpp, each compiled for its instruction set alone
// and chosen by cpuid (so the binary runs on any x86-64 CPU), timed on every thread at once.
#include "peak.hpp"

#include <omp.h>

#include "peak_loop.hpp"

namespace qkv::bench {
namespace {

fma_peak time_loop(const char* isa, int chains, int lanes, float (*loop)(), int threads,
                   const timing_plan& plan) {
  volatile float sink = 0.0f;  // keeps the loops' results alive
  fma_peak peak{isa, chains};
  peak.ms = median_ms(
      [&] {
#pragma omp parallel num_threads(threads)
        {
          const float r = loop();
#pragma omp critical
          sink = sink + r;
        }
      },
      plan);
  peak.flops = 2.0 * lanes * chains * double(fma_loop_iterations) * threads;
  peak.gflops = peak.flops / (peak.ms * 1e6);
  return peak;
}

}  // namespace

std::vector<fma_peak> measure_fma_peaks(int threads, const timing_plan& plan) {
  std::vector<fma_peak> peaks;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    peaks.push_back(time_loop("avx2", avx2_chains, 8, fma_loop_avx2, threads, plan));
  if (__builtin_cpu_supports("avx512f"))
    peaks.push_back(time_loop("avx512f", avx512_chains, 16, fma_loop_avx512, threads, plan));
  return peaks;
}

}  // namespace qkv::bench
