// Which keys a query row may see, and what its score gains or loses before the softmax: the one
// statement of the masking rules and score modifiers (docs/attention.md) that the reference, the
// fused forward and backward, and ring attention all ask.
//
// Positions: query i and key j stand at gi = q_offset + i and gj = k_offset + j of a problem of
// seq_q queries and seq_k keys (this call's Nq, Nk unless ring attention says otherwise), with
// o = seq_k - seq_q. Key j is visible to row i only if every rule allows it:
//   causal top-left      gj <= gi
//   causal bottom-right  gj <= gi + o
//   window (left, right) gi + o - left <= gj <= gi + o + right   (-1: that side unbounded)
//   boolean mask true; additive mask not -inf.
// The first three leave row i an interval [lo, hi) of keys, the band, whose ends never decrease
// with i: a block of rows [i0, i1) sees at most [lo(i0), hi(i1 - 1)), and a key tile outside it
// is skipped. The masks then hide keys inside the band one by one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "qkv/attention_params.hpp"

namespace qkv::detail {

struct key_band {
  int64_t lo = 0, hi = 0;  // visible keys [lo, hi), 0 <= lo <= hi <= Nk
  bool empty() const { return lo >= hi; }
};

class visibility {
 public:
  explicit visibility(const attention_params& p)
      : Nk_(p.Nk),
        shift_(p.q_offset - p.k_offset),
        o_((p.seq_k ? p.seq_k : p.Nk) - (p.seq_q ? p.seq_q : p.Nq)),
        causal_(p.causal),
        left_(p.window_left),
        right_(p.window_right) {}

  // The band of row i: every key the causal flag and the window allow.
  key_band band(int64_t i) const {
    const int64_t diagonal = i + shift_ + o_;  // the local key index j with gj = gi + o
    int64_t lo = 0, hi = Nk_;
    if (causal_ == causal_mode::top_left) hi = std::min(hi, i + shift_ + 1);
    if (causal_ == causal_mode::bottom_right) hi = std::min(hi, diagonal + 1);
    if (right_ >= 0) hi = std::min(hi, diagonal + right_ + 1);
    if (left_ >= 0) lo = std::max(lo, diagonal - left_);
    lo = std::clamp<int64_t>(lo, 0, Nk_);
    return {lo, std::clamp<int64_t>(hi, lo, Nk_)};
  }

  // The keys any of rows [i0, i1) may see (i0 < i1).
  key_band band(int64_t i0, int64_t i1) const {
    const key_band first = band(i0), last = band(i1 - 1);
    return {first.lo, std::max(first.lo, last.hi)};
  }

  // |gi + o - gj|: ALiBi's distance of key j from row i's diagonal.
  int64_t distance(int64_t i, int64_t j) const {
    const int64_t x = i + shift_ + o_ - j;
    return x < 0 ? -x : x;
  }

 private:
  int64_t Nk_, shift_, o_;
  causal_mode causal_;
  int64_t left_, right_;
};

// The explicit mask's entries of row (b, h, i), read along the keys.
struct mask_row {
  const uint8_t* boolean = nullptr;  // at key 0, or null
  const float* additive = nullptr;   // at key 0, or null
  int64_t step = 0;

  mask_row(const attention_params& p, int64_t b, int64_t h, int64_t i) : step(p.mask.stride[3]) {
    const int64_t at = b * p.mask.stride[0] + h * p.mask.stride[1] + i * p.mask.stride[2];
    if (p.mask.kind == mask_kind::boolean) boolean = static_cast<const uint8_t*>(p.mask.data) + at;
    if (p.mask.kind == mask_kind::additive) additive = static_cast<const float*>(p.mask.data) + at;
  }

  // The additive term of key j: 0, the float mask's value, or -inf for a false boolean entry.
  float bias(int64_t j) const {
    if (boolean) return boolean[j * step] ? 0.0f : -std::numeric_limits<float>::infinity();
    return additive ? additive[j * step] : 0.0f;
  }
};

// The score modifiers between the raw score and the mask, in the order of docs/attention.md:
// softcap, then ALiBi. T is float (fused kernels) or double (reference).
template <typename T>
T softcapped(T s, float softcap) {
  return softcap == 0.0f ? s : softcap * std::tanh(s / softcap);
}

// The NaN rule's per-row inputs other than Q, K, V and the mask: a non-finite slope, sink or
// softcap makes every row of head h NaN.
inline bool modifiers_poison(const attention_params& p, int64_t h) {
  return !std::isfinite(p.softcap) || (p.alibi_slopes && !std::isfinite(p.alibi_slopes[h])) ||
         (p.sinks && !std::isfinite(p.sinks[h]));
}

}  // namespace qkv::detail
