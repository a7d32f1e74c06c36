// The causal relation between a query segment and a key segment at GLOBAL positions, expressed
// with the kernels' local causal modes (which only know local indices), so that no per-block
// mask is ever built.
//
// Global rule (DESIGN section 2): query i sees key j iff j <= i + off, off = 0 (top-left) or
// Nk - Nq (bottom-right). For a query segment starting at qa and a key segment at ka, local rows
// il = i - qa and keys jl = j - ka: jl <= il + delta with delta = qa + off - ka. Row il thus sees
// clamp(il + delta + 1, 0, nk) keys, a prefix of the segment, which splits the rows into three
// runs:
//   - no visible key (il < -delta): skipped, they add nothing to the logsumexp merge;
//   - a diagonal (0 < count < nk): with e = first row + delta, row t of the run sees jl <= t + e,
//     which is exactly bottom-right causal over m rows and the key prefix of m + e keys
//     (bottom-right: jl <= t + keys - m);
//   - every key visible (il >= nk - 1 - delta): no causal mask.
// Equal chunks on the diagonal (delta = 0) give the familiar top-left block.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qkv/attention_params.hpp"
#include "qkv/dist/sequence_shards.hpp"

namespace qkv::dist::detail {

// Local rows [row_begin, row_begin + rows) of the query segment against the first `keys` keys
// of the key segment, under the local causal mode `causal`.
struct block_part {
  int64_t row_begin = 0, rows = 0, keys = 0;
  causal_mode causal = causal_mode::none;
};

// The runs with at least one visible key (none when the whole block is hidden: it is skipped).
inline std::vector<block_part> visible_parts(const segment& q, const segment& k, causal_mode mode,
                                             int64_t Nq, int64_t Nk) {
  if (mode == causal_mode::none) return {{0, q.length, k.length, causal_mode::none}};
  const int64_t off = mode == causal_mode::bottom_right ? Nk - Nq : 0;
  const int64_t delta = q.start + off - k.start, nq = q.length, nk = k.length;
  const int64_t diagonal_begin = std::clamp<int64_t>(-delta, 0, nq);
  const int64_t full_begin = std::clamp<int64_t>(nk - 1 - delta, 0, nq);
  std::vector<block_part> parts;
  if (full_begin > diagonal_begin) {
    const int64_t m = full_begin - diagonal_begin, e = diagonal_begin + delta;
    parts.push_back({diagonal_begin, m, m + e, causal_mode::bottom_right});
  }
  if (full_begin < nq) parts.push_back({full_begin, nq - full_begin, nk, causal_mode::none});
  return parts;
}

}  // namespace qkv::dist::detail
