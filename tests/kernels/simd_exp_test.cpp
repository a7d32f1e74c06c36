// The portable vectorised exp (src/kernels/simd/exp.hpp over simd/portable.hpp) against
// std::exp in double: the error bound docs/kernels.md states, exact values at the edges.
#include <gtest/gtest.h>

#include <iostream>

#include "kernels/simd/exp.hpp"
#include "kernels/simd/portable.hpp"
#include "support/exp_check.hpp"

namespace qkv {
namespace {

void exp_portable(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 8)
    simd::portable::store(y + i, simd::exp<simd::portable>(simd::portable::load(x + i)));
}

TEST(SimdExp, PortableWithinOneAndAHalfUlp) {
  const double e = testing::exp_max_ulp_error(exp_portable);
  std::cout << "portable exp: max error " << e << " ulp\n";
  EXPECT_LE(e, 1.5);
  testing::expect_exp_edges(exp_portable);
}

}  // namespace
}  // namespace qkv
