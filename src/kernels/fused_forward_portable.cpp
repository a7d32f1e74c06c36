// The fused forward task for any CPU: the vector operations of simd/portable.hpp, vectorised by
// the compiler for the baseline instruction set.
#include "fused_forward_tile.hpp"
#include "simd/portable.hpp"

namespace qkv::detail {

void fused_task_portable(const attention_params& p, const fused_blocks& bk, const fused_task& t,
                         float* scratch, fused_sink sink) {
  fused_forward_kernel<simd::portable>::run(p, bk, t, scratch, sink);
}

}  // namespace qkv::detail
