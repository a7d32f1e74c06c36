// The multi-head attention row of `qkv bench`: nn::multihead_attention self-attention forward
// (projections included), and the share of its time spent in the projections vs the attention.
#pragma once

#include <cstdint>

#include "timing.hpp"

namespace qkv::bench {

struct mha_timing {
  double ms = 0;            // the whole layer forward
  double attention_ms = 0;  // sdpa_forward alone on the layer's projected heads
  double flops = 0;         // 4 projections 4·2·B·N·E² + attention 4·B·N²·E
};

// x [B,N,E] through multihead_attention(E, H) with the fused kernel on `threads` threads.
mha_timing time_mha_forward(int64_t B, int64_t N, int64_t E, int64_t H, int threads,
                            const timing_plan& plan);

}  // namespace qkv::bench
