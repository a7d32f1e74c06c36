// The GPT-2 rows of `qkv bench`: a GPT-2-small-shaped model (L = 12, H = 12, E = 768, F = 3072,
// V = 50257, 1024 positions) with random weights made here, run through qkv::models::gpt2.
#pragma once

#include <cstdint>

#include "timing.hpp"

namespace qkv::bench {

struct gpt2_timing {
  double step_ms = 0;        // one generation step (KV cache holding 128 tokens)
  double prefill_ms = 0;     // the forward pass over 1024 tokens
  double step_flops = 0;     // 2·(matmul weights) + 4·H·d·(positions attended)
  double prefill_flops = 0;  // 2·T·(matmul weights) + 4·H·d·T(T+1)/2 per layer
  int64_t weight_bytes = 0;  // fp32 bytes of the weights one step reads
};

// Median times on `threads` threads (the model is built once per process).
gpt2_timing time_gpt2_small(int threads, const timing_plan& plan);

}  // namespace qkv::bench
