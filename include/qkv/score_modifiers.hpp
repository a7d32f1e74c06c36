// The score modifiers of modern models (docs/attention.md#score-modifiers): what a score gains or
// loses between the raw product and the softmax, and which keys a row may see beyond the causal
// flag and the masks. One struct, held alike by sdpa_options, nn::mha_options and
// ring::ring_options, so that a caller passes them on as one member.
#pragma once

#include <cstdint>
#include <optional>

#include "qkv/tensor.hpp"

namespace qkv {

// Sliding window: key j is visible to row i only if i + o - left <= j <= i + o + right,
// o = Nk - Nq; -1 leaves that side unbounded. Mistral's window W is (W - 1, 0).
struct attention_window {
  int64_t left = -1, right = -1;
};

struct score_modifiers {
  std::optional<attention_window> window;
  std::optional<float> softcap;        // S = c·tanh(S/c); finite and > 0
  std::optional<tensor> alibi_slopes;  // [Hq]: S -= slope_h·|i + o - j|; finite
  std::optional<tensor> sinks;         // [Hq]: one extra logit per head in the softmax; finite
};

}  // namespace qkv
