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

}  // namespace qkv
