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

void backward_task_avx2(const attention_grad_params& g, const row_statistics& stats, const float* D,
                        int64_t b, int64_t hk, int64_t j0, int64_t nj, backward_scratch& t) {
  simd::with_element_type(g.forward.k_type, [&]<typename E>() {
    fused_backward_kernel<simd::avx2, E>::key_block(g, stats, D, b, hk, j0, nj, t);
  });
}

void backward_local_stats_avx2(const attention_params& p, int64_t b, int64_t h, int64_t i0,
                               int64_t ni, backward_scratch& t, double* m, double* log_sum) {
  simd::with_element_type(p.k_type, [&]<typename E>() {
    fused_backward_kernel<simd::avx2, E>::local_stats(p, b, h, i0, ni, t, m, log_sum);
  });
}

}  // namespace qkv::detail
