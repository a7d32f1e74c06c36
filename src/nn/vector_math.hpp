// exp, erf and tanh of one float, branch-free, so that the element-wise layers' loops (GELU,
// softmax rows) vectorise under `#pragma omp simd`; and the SIMD targets those loops are cloned
// for. Private to src/nn. Accuracy: tests/nn/vector_math_test.cpp.
#pragma once

#include <bit>
#include <cstdint>

#include "kernels/simd/exp.hpp"

// Each element-wise kernel is compiled for AVX-512, AVX2+FMA and the baseline, chosen when the
// program loads (GCC function multi-versioning). The lanes compute without FMA contraction
// (ISO C++ mode), so every clone gives the same floats. Not under ThreadSanitizer: the clones'
// resolvers run while the loader relocates the program, before the TSan runtime is set up, and
// their instrumented entry crashes there; a TSan build keeps the baseline version alone.
#if defined(__SANITIZE_THREAD__)
#define QKV_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QKV_THREAD_SANITIZER 1
#endif
#endif
#ifdef QKV_THREAD_SANITIZER
#define QKV_VECTOR_CLONES
#else
#define QKV_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

namespace qkv::nn::detail {

// One float with the vector operations kernels/simd/exp.hpp is written over: the fused kernels'
// exp, reused lane by lane inside loops the compiler vectorises.
struct float_lane {
  using reg = float;
  static reg set1(float x) { return x; }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static reg fmadd(reg a, reg b, reg c) { return a * b + c; }
  static reg fnmadd(reg a, reg b, reg c) { return c - a * b; }
  static reg low_bits_to_exponent(reg x) {
    return std::bit_cast<float>(std::bit_cast<uint32_t>(x) << 23);
  }
};

// exp(x) for x <= 88 (kernels/simd/exp.hpp: Cody-Waite reduction, degree-5 polynomial).
inline float exp_lane(float x) {
  return simd::exp<float_lane>(x);
}

// erf(x) = x·P(x²)/Q(x²) on [-4, 4], P of degree 6 and Q of degree 4 in x² (the rational
// minimax fit of Eigen's and XLA's float erf); |x| > 4 gives ±1, where erf is within 2e-8 of it.
// Absolute error 4.2e-7 at most (3.5 ulp of 1) against erf in float64.
inline float erf_lane(float a) {
  const float x = a < -4.0f ? -4.0f : (a > 4.0f ? 4.0f : a);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 - 2.10102402082508e-06f;
  p = p * x2 - 5.69250639462346e-05f;
  p = p * x2 - 7.34990630326855e-04f;
  p = p * x2 - 2.95459980854025e-03f;
  p = p * x2 - 1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 - 2.13374055278905e-04f;
  q = q * x2 - 1.68282697438203e-03f;
  q = q * x2 - 7.37332916720468e-03f;
  q = q * x2 - 1.42647390514189e-02f;
  return x * p / q;
}

// tanh(u) and sech²(u) = 1 − tanh²(u) from e = exp(−2|u|) <= 1: tanh = sign(u)·(1 − e)/(1 + e),
// sech² = 4e/(1 + e)², so that neither overflows nor cancels (1 − t² from a rounded t would lose
// the digits of sech² where |t| is near 1). |u| is capped at 40, where sech² < 1e-34.
struct tanh_sech2 {
  float tanh, sech2;
};
inline tanh_sech2 tanh_lane(float u) {
  const float a = u < 0.0f ? -u : u;
  const float e = exp_lane(-2.0f * (a > 40.0f ? 40.0f : a));
  const float t = (1.0f - e) / (1.0f + e);
  return {u < 0.0f ? -t : t, 4.0f * e / ((1.0f + e) * (1.0f + e))};
}

// GELU's tanh approximation: its inner argument u = sqrt(2/π)·(x + 0.044715·x³).
constexpr float gelu_tanh_k = 0.7978845608028654f, gelu_tanh_c = 0.044715f;

}  // namespace qkv::nn::detail
