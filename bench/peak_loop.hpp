// The register-resident FMA loop of the `peak` row, written once over a vector type of
// src/kernels/simd/ and compiled in one translation unit per instruction set (peak_avx2.cpp,
// peak_avx512.cpp, each under its target pragma).
#pragma once

#include <cstdint>

namespace qkv::bench {

inline constexpr int64_t fma_loop_iterations = 1 << 20;

// acc = acc·a + b on `Chains` independent registers, fma_loop_iterations times: enough chains to
// cover the FMA latency (4 cycles) times the FMA ports (2), few enough to stay in the register
// file beside a and b. 2·width·Chains·iterations FLOPs. Returns a lane of the sum, so that the
// work stays alive.
template <typename V, int Chains>
float fma_loop() {
  typename V::reg acc[Chains];
  for (int c = 0; c < Chains; ++c) acc[c] = V::set1(float(c));
  const typename V::reg a = V::set1(0.999999f), b = V::set1(1e-6f);
  for (int64_t i = 0; i < fma_loop_iterations; ++i)
#pragma GCC unroll 32
    for (int c = 0; c < Chains; ++c) acc[c] = V::fmadd(acc[c], a, b);
  typename V::reg sum = acc[0];
  for (int c = 1; c < Chains; ++c) sum = V::add(sum, acc[c]);
  return V::reduce_add(sum);
}

// 12 chains of 8 lanes in 16 ymm registers; 24 chains of 16 lanes in 32 zmm registers.
inline constexpr int avx2_chains = 12, avx512_chains = 24;
float fma_loop_avx2();
float fma_loop_avx512();

}  // namespace qkv::bench
