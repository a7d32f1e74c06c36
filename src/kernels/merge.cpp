// The logsumexp merge of partial attention results (include/qkv/merge.hpp).
// Legend: B batch, H heads, N query rows, dv value head dim; c indexes value channels.
#include "qkv/merge.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace qkv {
namespace {

constexpr double minus_infinity = -std::numeric_limits<double>::infinity();

// The merge weights of n partial results: w_s = exp(lse_s - m) with m the largest lse (no
// overflow; exp(-inf - m) = 0 gives an empty partial no weight); returns lse = m + log(sum w),
// or -inf when every partial is empty (then w is left unset).
double merge_weights(int64_t n, const double* lse, double* w) {
  const double m = *std::max_element(lse, lse + n);
  if (m == minus_infinity) return m;
  double sum = 0.0;
  for (int64_t s = 0; s < n; ++s) sum += w[s] = std::exp(lse[s] - m);
  for (int64_t s = 0; s < n; ++s) w[s] /= sum;
  return m + std::log(sum);
}

}  // namespace

void merge_partial(const partial_result_ref& acc, const partial_result_ref& part, int64_t B,
                   int64_t H, int64_t N, int64_t dv) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) {
        float& lse_acc =
            acc.lse[b * acc.lse_stride[0] + h * acc.lse_stride[1] + i * acc.lse_stride[2]];
        const double lse[2] = {
            lse_acc,
            part.lse[b * part.lse_stride[0] + h * part.lse_stride[1] + i * part.lse_stride[2]]};
        // The partial saw no key: it adds nothing (and its O, 0 by contract, is not read).
        if (lse[1] == minus_infinity) continue;
        double w[2] = {0.0, 0.0};
        lse_acc = static_cast<float>(merge_weights(2, lse, w));
        float* o = acc.o + b * acc.o_stride[0] + h * acc.o_stride[1] + i * acc.o_stride[2];
        const float* op =
            part.o + b * part.o_stride[0] + h * part.o_stride[1] + i * part.o_stride[2];
        for (int64_t c = 0; c < dv; ++c) {
          float& x = o[c * acc.o_stride[3]];
          x = static_cast<float>(w[0] * x + w[1] * op[c * part.o_stride[3]]);
        }
      }
}

void merge_row(int64_t splits, const float* part_o, const float* part_lse, int64_t split_stride,
               int64_t dv, float* out, int64_t out_step, float* lse_out) {
  std::vector<double> lse(static_cast<size_t>(splits)), w(static_cast<size_t>(splits));
  for (int64_t s = 0; s < splits; ++s) lse[s] = part_lse[s * split_stride];
  const double total = merge_weights(splits, lse.data(), w.data());
  for (int64_t c = 0; c < dv; ++c) {
    double x = 0.0;
    for (int64_t s = 0; s < splits && total != minus_infinity; ++s)
      if (lse[s] != minus_infinity) x += w[s] * part_o[s * split_stride + c];
    out[c * out_step] = static_cast<float>(x);
  }
  if (lse_out) *lse_out = static_cast<float>(total);
}

}  // namespace qkv
