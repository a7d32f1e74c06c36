// The fused forward task for CPUs with AVX-512F (chosen at run time, fused_forward.cpp): the
// kernel of fused_forward_tile.hpp over 16-float vectors, with its micro-tiles sized for 32
// registers. Only the code after the target pragma is compiled for AVX-512: the standard library
// and the plan come first so that their inline functions, shared with other translation units,
// stay baseline.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "dropout_lookup.hpp"
#include "fused_forward_plan.hpp"
#include "fused_forward_rows.hpp"

#pragma GCC target("avx512f,avx2,fma,f16c")

#include "fused_forward_tile.hpp"
#include "simd/avx512.hpp"

namespace qkv::detail {

const fused_forward_target fused_forward_avx512 = fused_forward_kernels<simd::avx512>();

}  // namespace qkv::detail
