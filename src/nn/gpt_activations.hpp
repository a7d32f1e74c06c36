// What one GPT forward pass keeps for its backward: every block's inputs, normalised inputs,
// attention results, FFN pre-activations and dropout masks. Private to src/nn/gpt*.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "gpt_ops.hpp"
#include "qkv/nn/gpt.hpp"

namespace qkv::nn {

struct gpt_activations {
  struct block {
    tensor x_in, h1;  // block input and LN1(x_in)
    detail::layer_norm_cache ln1, ln2;
    mha_result attn;
    tensor x_mid, h2;     // after the attention residual, and LN2(x_mid)
    tensor f1, g;         // fc1(h2) and GELU(f1)
    tensor drop1, drop2;  // residual dropout multipliers (empty when off)
  };
  std::vector<int32_t> tokens;
  int64_t B = 0, T = 0;
  mha_options mha;
  std::vector<block> blocks;
  tensor x_out, hf;  // last block's output and LN_f(x_out)
  detail::layer_norm_cache lnf;
};

}  // namespace qkv::nn
