// Reading the visibility and bias of one score S[b,h,i,j] from the causal mode and the mask.
// Shared by every kernel so that all of them agree on DESIGN section 2's mask rules.
#pragma once

#include <cmath>
#include <limits>

#include "qkv/attention_params.hpp"

namespace qkv::detail {

// The additive term of S[b,h,i,j]: 0 for a visible key without a float mask, the float mask's
// value, or -inf for a key hidden by the causal mode or a false boolean entry.
inline double score_bias(const attention_params& p, int64_t b, int64_t h, int64_t i, int64_t j) {
  constexpr double hidden = -std::numeric_limits<double>::infinity();
  if (!causal_allows(p.causal, i, j, p.Nq, p.Nk)) return hidden;
  const mask_ref& m = p.mask;
  if (m.kind == mask_kind::none) return 0.0;
  const int64_t at = b * m.stride[0] + h * m.stride[1] + i * m.stride[2] + j * m.stride[3];
  if (m.kind == mask_kind::boolean) return static_cast<const uint8_t*>(m.data)[at] ? 0.0 : hidden;
  return static_cast<const float*>(m.data)[at];
}

}  // namespace qkv::detail
