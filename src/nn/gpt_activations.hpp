// What one GPT forward pass keeps for its backward: every block's input, normalised inputs,
// attention results, FFN pre-activation and dropout masks. Private to src/nn/gpt*.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "qkv/nn/gpt.hpp"

namespace qkv::nn {

struct gpt_activations {
  struct block {
    tensor x_in, h1;  // block input and LN1(x_in)
    mha_result attn;
    tensor x_mid, h2;        // after the attention residual, and LN2(x_mid)
    feed_forward_cache ffn;  // the FFN's hidden layer
    tensor drop1, drop2;     // residual dropout multipliers (empty when off)
    mha_options mha;         // the attention's options: causal, threads, its dropout seed
  };
  std::vector<int64_t> tokens, positions;  // [B·T] each
  std::vector<block> blocks;
  tensor x_out, hf;  // last block's output and LN_f(x_out)
};

}  // namespace qkv::nn
