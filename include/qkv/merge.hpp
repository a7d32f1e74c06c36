// Combining attention results computed over disjoint key sets (ring attention's blocks, a split
// of a long key row): the logsumexp rule, carried out on each row's softmax statistics, the row
// maximum m and log l = log sum_j exp(S_j - m), so that lse = m + log l never has to hold a huge
// m and a small log l in one fp32 number. Not a kernel: it never sees Q, K or V.
//
// Legend: B batch, H heads, N query rows, dv value head dim.
#pragma once

#include <cstdint>

namespace qkv {

// One attention result over some of the keys: O [B,H,N,dv] and the statistics m and log l
// [B,H,N] each (strides in elements, shared by the two). A partial that saw no key has
// m = -inf (and O = 0); a NaN m marks a row the NaN rule poisoned.
struct partial_result_ref {
  float* o = nullptr;
  float* row_max = nullptr;
  float* row_log_sum = nullptr;
  int64_t o_stride[4] = {};
  int64_t row_stride[3] = {};
};

// acc <- merge(acc, part): with lse_x = m_x + log l_x and lse = logsumexp(lse_acc, lse_part),
//   O = exp(lse_acc - lse)·O_acc + exp(lse_part - lse)·O_part,  m = max(m_acc, m_part),
//   log l = lse - m, all in float64. Start acc at O = 0, m = log l = -inf. A partial with
// m = -inf leaves acc as it is; a NaN on either side gives NaN. `part` is only read.
void merge_partial(const partial_result_ref& acc, const partial_result_ref& part, int64_t B,
                   int64_t H, int64_t N, int64_t dv);

// acc <- merge(acc, the attention sinks [H]): each row's softmax gains exp(sink_h), a partial
// with O = 0, m = sink_h, log l = 0. Counted once, after every key has been merged.
void merge_sinks(const partial_result_ref& acc, const float* sinks, int64_t B, int64_t H, int64_t N,
                 int64_t dv);

// The `count` partial results of one row (the fused forward's key splits): partial s at
// o[s·stride + c], max[s·stride], log_sum[s·stride].
struct split_parts {
  int64_t count = 0, stride = 0;
  const float* o = nullptr;
  const float* max = nullptr;
  const float* log_sum = nullptr;
};

// Where a merged row goes: O at o[c·o_step]; lse, m and log l where non-null.
struct row_out {
  float* o = nullptr;
  int64_t o_step = 1;
  float* lse = nullptr;
  float* row_max = nullptr;
  float* row_log_sum = nullptr;
};

// One row's split partials and its sink (-inf: none) merged at once, in float64. No visible key
// and no sink: O = 0, m = log l = lse = -inf.
void merge_row(const split_parts& parts, float sink, int64_t dv, const row_out& out);

}  // namespace qkv
