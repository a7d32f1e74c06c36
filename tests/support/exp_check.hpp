// Checks of a vectorised exp (src/kernels/simd/exp.hpp) given as a function over arrays, shared
// by the per-SIMD-target tests in tests/kernels/simd_exp*_test.cpp.
#pragma once

#include <cstdint>

namespace qkv::testing {

using exp_array_fn = void (*)(const float* x, float* y, int64_t n);  // n a multiple of 16

// Largest error in units of the exact result's ulp (std::exp in double) over x = -87.3 .. 0, the
// softmax domain where results are normal floats, in 2^22 even steps, and x = 88.
double exp_max_ulp_error(exp_array_fn f);
// exp(0) = 1 exactly; 0 exactly for -inf and x < -87.68; 2e-7 relative at a few points.
void expect_exp_edges(exp_array_fn f);

}  // namespace qkv::testing
