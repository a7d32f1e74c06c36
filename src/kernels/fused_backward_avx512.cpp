// The fused backward task for CPUs with AVX-512F (chosen at run time, fused_backward.cpp).
// Only the code after the target pragma is compiled for AVX-512: the standard library and the
// task's declarations come first so that their inline functions stay baseline.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "dropout_lookup.hpp"
#include "fused_backward_task.hpp"
#include "visibility.hpp"

#pragma GCC target("avx512f,avx2,fma,f16c")

#include "fused_backward_tile.hpp"
#include "simd/avx512.hpp"

namespace qkv::detail {

const fused_backward_target fused_backward_avx512 = fused_backward_kernels<simd::avx512>();

}  // namespace qkv::detail
