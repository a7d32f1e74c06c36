// The vectorised row softmax of the BLAS composition: P[i,:] = softmax(scale·S[i,:]) over the
// keys each row may see, 0 beyond them. It uses the fused kernel's exp (src/kernels/simd/exp.hpp),
// so that the composition and the fused kernel differ in their structure, not their exp.
#pragma once

#include <cstdint>

#include "qkv/attention_params.hpp"

namespace qkv::bench {

// s: [rows, cols] row-major, overwritten by P. Row i of a causal matrix sees the keys
// j <= i + (cols - rows) (bottom-right) or j <= i (top-left); a row seeing none becomes 0.
// Rows are split over `threads` OpenMP threads; AVX2+FMA when the CPU has it.
void softmax_rows(float* s, int64_t rows, int64_t cols, float scale, causal_mode causal,
                  int threads);

}  // namespace qkv::bench
