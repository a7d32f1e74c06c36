// The row softmax written once over the vector operations of src/kernels/simd (V = avx2 or
// portable); instantiated by row_softmax.cpp and row_softmax_avx2.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/simd/exp.hpp"
#include "qkv/attention_params.hpp"

namespace qkv::bench::detail {

// One row of n >= 1 visible scores in place: P_j = exp(scale·(s_j - m)) / sum_j exp(...), with
// m the row maximum, subtracted so that exp never overflows (docs/contracts.md section 1).
template <typename V>
void softmax_row(float* s, int64_t n, float scale) {
  using reg = typename V::reg;
  constexpr int64_t L = V::width;
  // Pass 1: the row maximum m.
  int64_t j = 0;
  float m = s[0];
  if (n >= L) {
    reg vmax = V::load(s);
    for (j = L; j + L <= n; j += L) vmax = V::max(vmax, V::load(s + j));
    m = V::reduce_max(vmax);
  }
  for (; j < n; ++j) m = std::max(m, s[j]);
  // Pass 2: e_j = exp(scale·s_j - scale·m) and their sum. The tail goes through a vector padded
  // with m, so that every element uses the same exp.
  const reg vscale = V::set1(scale), vshift = V::set1(-scale * m);
  reg vsum = V::zero();
  for (j = 0; j + L <= n; j += L) {
    const reg e = simd::exp<V>(V::fmadd(V::load(s + j), vscale, vshift));
    V::store(s + j, e);
    vsum = V::add(vsum, e);
  }
  float sum = V::reduce_add(vsum);
  if (j < n) {
    float tail[L];
    std::fill(tail, tail + L, m);
    std::memcpy(tail, s + j, static_cast<size_t>(n - j) * sizeof(float));
    V::store(tail, simd::exp<V>(V::fmadd(V::load(tail), vscale, vshift)));
    for (int64_t t = j; t < n; ++t) sum += (s[t] = tail[t - j]);
  }
  // Pass 3: normalise.
  const reg vinv = V::set1(1.0f / sum);
  for (j = 0; j + L <= n; j += L) V::store(s + j, V::mul(V::load(s + j), vinv));
  for (; j < n; ++j) s[j] *= 1.0f / sum;
}

template <typename V>
void softmax_rows(float* s, int64_t rows, int64_t cols, float scale, causal_mode causal,
                  int threads) {
  const int64_t offset = causal == causal_mode::bottom_right ? cols - rows : 0;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    float* row = s + i * cols;
    const int64_t n =
        causal == causal_mode::none ? cols : std::clamp<int64_t>(i + offset + 1, 0, cols);
    if (n > 0) softmax_row<V>(row, n, scale);
    std::fill(row + n, row + cols, 0.0f);
  }
}

}  // namespace qkv::bench::detail
