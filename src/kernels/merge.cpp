// The logsumexp merge of partial attention results (include/qkv/merge.hpp).
// Legend: B batch, H heads, N query rows, dv value head dim; c indexes value channels.
#include "qkv/merge.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qkv {

void merge_partial(const partial_result_ref& acc, const partial_result_ref& part, int64_t B,
                   int64_t H, int64_t N, int64_t dv) {
  constexpr double minus_infinity = -std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) {
        float& lse_acc =
            acc.lse[b * acc.lse_stride[0] + h * acc.lse_stride[1] + i * acc.lse_stride[2]];
        const double a = lse_acc;
        const double p =
            part.lse[b * part.lse_stride[0] + h * part.lse_stride[1] + i * part.lse_stride[2]];
        // The partial saw no key: it adds nothing (and its O, 0 by contract, is not read).
        if (p == minus_infinity) continue;
        // lse = m + log(w_acc + w_part) with w = exp(lse_x - m), m the larger: no overflow, and
        // exp(-inf - m) = 0 gives the accumulator's empty start no weight.
        const double m = std::max(a, p);
        const double w_acc = std::exp(a - m), w_part = std::exp(p - m), sum = w_acc + w_part;
        lse_acc = static_cast<float>(m + std::log(sum));
        float* o = acc.o + b * acc.o_stride[0] + h * acc.o_stride[1] + i * acc.o_stride[2];
        const float* op =
            part.o + b * part.o_stride[0] + h * part.o_stride[1] + i * part.o_stride[2];
        for (int64_t c = 0; c < dv; ++c) {
          float& x = o[c * acc.o_stride[3]];
          x = static_cast<float>((w_acc * x + w_part * op[c * part.o_stride[3]]) / sum);
        }
      }
}

}  // namespace qkv
