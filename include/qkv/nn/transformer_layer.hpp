// What the Transformer encoder and decoder layers share: the configuration of
// nn.TransformerEncoderLayer / nn.TransformerDecoderLayer and what a residual block keeps for its
// backward. (The options of one forward are qkv::run_options.)
#pragma once

#include <cstdint>

#include "qkv/attention.hpp"
#include "qkv/nn/feed_forward.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

struct transformer_layer_config {
  int64_t d_model = 0;                // E
  int64_t nhead = 1;                  // H
  int64_t dim_feedforward = 2048;     // F
  activation act = activation::relu;  // gelu: erf form
  bool norm_first = false;            // pre-norm
  float layer_norm_eps = 1e-5f;
};

// What one residual block (LN and sublayer f) keeps for backward, by norm order:
//   post-norm: out = LN(sum), sum = in + f(in);   pre-norm: out = in + f(normed), normed = LN(in).
struct residual_activations {
  tensor normed;  // pre-norm: LN(in), the sublayer's input (empty for post-norm)
  tensor sum;     // post-norm: in + f(in), LN's input (empty for pre-norm)
};

}  // namespace qkv::nn
