// The fused backward task for any CPU: the vector operations of simd/portable.hpp, vectorised by
// the compiler for the baseline instruction set.
#include "fused_backward_tile.hpp"
#include "simd/portable.hpp"

namespace qkv::detail {

const fused_backward_target fused_backward_portable = fused_backward_kernels<simd::portable>();

}  // namespace qkv::detail
