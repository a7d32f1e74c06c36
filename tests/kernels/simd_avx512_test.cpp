// The AVX-512 vector type (src/kernels/simd/avx512.hpp): its exp against std::exp in double (the
// bound of the other targets) and its reductions against scalar sums, when the CPU has AVX-512F.
// Only the code after the target pragma uses AVX-512.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <random>

#include "support/exp_check.hpp"

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
#include "kernels/simd/avx512.hpp"
#include "kernels/simd/exp.hpp"

namespace qkv {
namespace {

using V = simd::avx512;

void exp_avx512(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += V::width) V::store(y + i, simd::exp<V>(V::load(x + i)));
}

// x[16][16] -> lane sums, sum, max of row 0.
void reductions(const float* x, float* sums, float* sum0, float* max0) {
  V::reg r[16];
  for (int i = 0; i < 16; ++i) r[i] = V::load(x + 16 * i);
  V::store(sums, V::lane_sums(r));
  *sum0 = V::reduce_add(r[0]);
  *max0 = V::reduce_max(r[0]);
}
#pragma GCC pop_options

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("fma");
}

TEST(SimdExp, Avx512WithinOneAndAHalfUlp) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "no AVX-512F on this CPU";
  const double e = testing::exp_max_ulp_error(exp_avx512);
  std::cout << "avx512 exp: max error " << e << " ulp\n";
  EXPECT_LE(e, 1.5);
  testing::expect_exp_edges(exp_avx512);
}

TEST(SimdAvx512, ReductionsEqualScalarSums) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "no AVX-512F on this CPU";
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> small(-64, 64);
  // Multiples of 1/8 of small size: every partial sum is exact, so any order gives the same.
  float x[256];
  for (float& v : x) v = small(rng) / 8.0f;
  float sums[16], sum0, max0;
  reductions(x, sums, &sum0, &max0);
  for (int i = 0; i < 16; ++i) {
    float s = 0;
    for (int l = 0; l < 16; ++l) s += x[16 * i + l];
    EXPECT_EQ(sums[i], s) << "register " << i;
  }
  EXPECT_EQ(sum0, sums[0]);
  float m = x[0];
  for (int l = 0; l < 16; ++l) m = std::max(m, x[l]);
  EXPECT_EQ(max0, m);
}

}  // namespace
}  // namespace qkv
