// The fused backward task for CPUs with AVX2 and FMA (chosen at run time, fused_backward.cpp).
// Only the code after the target pragma is compiled for AVX2: the standard library and the
// task's declarations come first so that their inline functions stay baseline.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "dropout_lookup.hpp"
#include "fused_backward_task.hpp"
#include "visibility.hpp"

#pragma GCC target("avx2,fma,f16c")

#include "fused_backward_tile.hpp"
#include "simd/avx2.hpp"

namespace qkv::detail {

const fused_backward_target fused_backward_avx2 = fused_backward_kernels<simd::avx2>();

}  // namespace qkv::detail
