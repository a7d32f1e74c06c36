// Combining attention results computed over disjoint key sets (ring attention's blocks, a split
// of a long key row): the logsumexp rule. Not a kernel: it never sees Q, K or V.
//
// Legend: B batch, H heads, N query rows, dv value head dim.
#pragma once

#include <cstdint>

namespace qkv {

// One attention result over some of the keys: O [B,H,N,dv] and lse [B,H,N] (strides in elements).
struct partial_result_ref {
  float* o = nullptr;
  float* lse = nullptr;
  int64_t o_stride[4] = {};
  int64_t lse_stride[3] = {};
};

// acc <- merge(acc, part): with lse = logsumexp(lse_acc, lse_part),
//   O = exp(lse_acc - lse)·O_acc + exp(lse_part - lse)·O_part.
// Start acc at O = 0, lse = -inf. A partial with lse = -inf (no visible key) leaves acc as it
// is; rows where both are -inf stay O = 0, lse = -inf, never NaN. `part` is only read.
void merge_partial(const partial_result_ref& acc, const partial_result_ref& part, int64_t B,
                   int64_t H, int64_t N, int64_t dv);

// One row's `splits` partial results merged at once (the fused forward's key splits):
// lse = log sum_s exp(lse_s), O = sum_s exp(lse_s - lse)·O_s, summed in float64. Partial s is
// part_o[s·split_stride + c] with lse part_lse[s·split_stride]; the result goes to out[c·out_step]
// and *lse_out (when non-null). Every lse = -inf gives O = 0, lse = -inf.
void merge_row(int64_t splits, const float* part_o, const float* part_lse, int64_t split_stride,
               int64_t dv, float* out, int64_t out_step, float* lse_out);

}  // namespace qkv
