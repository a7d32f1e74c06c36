// The row softmax's run-time dispatch: AVX2+FMA where the CPU has it, the portable build elsewhere.
#include "row_softmax.hpp"

#include "kernels/simd/portable.hpp"
#include "row_softmax_impl.hpp"

namespace qkv::bench {
namespace detail {
void softmax_rows_avx2(float* s, int64_t rows, int64_t cols, float scale, causal_mode causal,
                       int threads);
}  // namespace detail

void softmax_rows(float* s, int64_t rows, int64_t cols, float scale, causal_mode causal,
                  int threads) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2)
    detail::softmax_rows_avx2(s, rows, cols, scale, causal, threads);
  else
    detail::softmax_rows<simd::portable>(s, rows, cols, scale, causal, threads);
}

}  // namespace qkv::bench
