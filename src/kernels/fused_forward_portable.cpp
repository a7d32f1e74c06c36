// The fused forward task for any CPU: the vector operations of simd/portable.hpp, vectorised by
// the compiler for the baseline instruction set.
#include "fused_forward_tile.hpp"
#include "simd/portable.hpp"

namespace qkv::detail {

const fused_forward_target fused_forward_portable = fused_forward_kernels<simd::portable>();

}  // namespace qkv::detail
