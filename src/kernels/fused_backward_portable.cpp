// The fused backward task for any CPU: the vector operations of simd/portable.hpp, vectorised by
// the compiler for the baseline instruction set.
#include "fused_backward_tile.hpp"
#include "simd/portable.hpp"

namespace qkv::detail {

void backward_task_portable(const attention_grad_params& g, const row_statistics& stats,
                            const float* D, int64_t b, int64_t hk, int64_t j0, int64_t nj,
                            backward_scratch& t) {
  simd::with_element_type(g.forward.k_type, [&]<typename E>() {
    fused_backward_kernel<simd::portable, E>::key_block(g, stats, D, b, hk, j0, nj, t);
  });
}

void backward_local_stats_portable(const attention_params& p, int64_t b, int64_t h, int64_t i0,
                                   int64_t ni, backward_scratch& t, double* m, double* log_sum) {
  simd::with_element_type(p.k_type, [&]<typename E>() {
    fused_backward_kernel<simd::portable, E>::local_stats(p, b, h, i0, ni, t, m, log_sum);
  });
}

}  // namespace qkv::detail
