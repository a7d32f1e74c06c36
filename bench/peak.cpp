// The register-resident FMA loops behind the `peak` row. Each is compiled for its instruction set
// alone (a target attribute) and chosen by cpuid, so the binary runs on any x86-64 CPU.
#include "peak.hpp"

#include <immintrin.h>
#include <omp.h>

namespace qkv::bench {
namespace {

// acc = acc·a + b on `Chains` independent registers: enough chains to cover the FMA latency
// (4 cycles) times the FMA ports (2), and few enough to stay in registers with a and b
// (16 ymm registers for AVX2, 32 zmm for AVX-512). Two FLOPs per lane per FMA.
constexpr int avx2_chains = 12, avx512_chains = 24;
constexpr int64_t iterations = 1 << 20;

__attribute__((target("avx2,fma"))) float fma_loop_avx2() {
  __m256 acc[avx2_chains];
  for (int c = 0; c < avx2_chains; ++c) acc[c] = _mm256_set1_ps(float(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 24
    for (int c = 0; c < avx2_chains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  __m256 sum = acc[0];
  for (int c = 1; c < avx2_chains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  return _mm256_cvtss_f32(sum);
}

__attribute__((target("avx512f"))) float fma_loop_avx512() {
  __m512 acc[avx512_chains];
  for (int c = 0; c < avx512_chains; ++c) acc[c] = _mm512_set1_ps(float(c));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 24
    for (int c = 0; c < avx512_chains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 sum = acc[0];
  for (int c = 1; c < avx512_chains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  return lanes[0];
}

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
  peak.flops = 2.0 * lanes * chains * double(iterations) * threads;
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
