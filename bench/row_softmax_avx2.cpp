// The row softmax for AVX2+FMA; this file alone is compiled with -mavx2 -mfma (bench/CMakeLists).
#include "kernels/simd/avx2.hpp"
#include "row_softmax_impl.hpp"

namespace qkv::bench::detail {

void softmax_rows_avx2(float* s, int64_t rows, int64_t cols, float scale, causal_mode causal,
                       int threads) {
  softmax_rows<simd::avx2>(s, rows, cols, scale, causal, threads);
}

}  // namespace qkv::bench::detail
