// The AVX2+FMA vectorised exp (src/kernels/simd/exp.hpp over simd/avx2.hpp) against std::exp in
// double, when the CPU has AVX2+FMA. Only the code after the target pragma uses AVX2.
#include <gtest/gtest.h>

#include <iostream>

#include "qkv/fused.hpp"
#include "support/exp_check.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "kernels/simd/avx2.hpp"
#include "kernels/simd/exp.hpp"

namespace qkv {
namespace {

void exp_avx2(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 8)
    simd::avx2::store(y + i, simd::exp<simd::avx2>(simd::avx2::load(x + i)));
}
#pragma GCC pop_options

TEST(SimdExp, Avx2WithinOneAndAHalfUlp) {
  if (!simd_target_available(simd_target::avx2)) GTEST_SKIP() << "no AVX2+FMA on this CPU";
  const double e = testing::exp_max_ulp_error(exp_avx2);
  std::cout << "avx2 exp: max error " << e << " ulp\n";
  EXPECT_LE(e, 1.5);
  testing::expect_exp_edges(exp_avx2);
}

}  // namespace
}  // namespace qkv
