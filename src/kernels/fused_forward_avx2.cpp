// The fused forward task for CPUs with AVX2 and FMA (chosen at run time, fused_forward.cpp).
// Only the code after the target pragma is compiled for AVX2: the standard library and the plan
// come first so that their inline functions, shared with other translation units, stay baseline.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "dropout_lookup.hpp"
#include "fused_forward_plan.hpp"
#include "fused_forward_rows.hpp"

#pragma GCC target("avx2,fma,f16c")

#include "fused_forward_tile.hpp"
#include "simd/avx2.hpp"

namespace qkv::detail {

const fused_forward_target fused_forward_avx2 = fused_forward_kernels<simd::avx2>();

}  // namespace qkv::detail
