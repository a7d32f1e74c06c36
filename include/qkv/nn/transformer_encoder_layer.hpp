// nn.TransformerEncoderLayer(batch_first=True, dropout=0): self-attention and feed-forward, each
// with a residual connection and a LayerNorm, after (post-norm) or before (pre-norm) the block:
//   post: h = LN1(x + SA(x));  out = LN2(h + FFN(h))
//   pre:  h = x + SA(LN1(x));  out = h + FFN(LN2(h))
// state_dict names: self_attn.*, linear1.*, linear2.*, norm1.*, norm2.*.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "qkv/nn/feed_forward.hpp"
#include "qkv/nn/layer_norm.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/nn/transformer_layer.hpp"

namespace qkv::nn {

// Gradients of an encoder layer's parameters (accumulated by backward).
struct transformer_encoder_grads {
  mha_grads self_attn;
  feed_forward_grads ffn;
  layer_norm_grads norm1, norm2;
};

class transformer_encoder_layer {
 public:
  transformer_encoder_layer() = default;
  transformer_encoder_layer(const transformer_layer_config& config, std::mt19937_64& rng);
  // E and F come from the tensors; nhead, activation, norm_first and eps are not stored in a
  // state_dict and must be given (config.d_model and dim_feedforward are ignored).
  static transformer_encoder_layer load(state_dict_reader& reader, const std::string& prefix,
                                        const transformer_layer_config& config);
  void save(state_dict& dict, const std::string& prefix) const;

  // The intermediates of one forward (what a backward pass will need).
  struct result {
    tensor out;            // [B,S,E]
    mha_result self_attn;  // SA's activations
    tensor h;              // after the attention block (its output)
    residual_activations attn_block, ffn_block;
    feed_forward_cache ffn;
  };
  // src [B,S,E]; masks: src_mask ([S,S] or [B·H,S,S], bool true = masked out, or float added),
  // src_key_padding_mask [B,S] (true = padding), is_causal.
  result forward(const tensor& src, const mha_masks& masks = {}, const run_options& run = {}) const;

  // Backward of forward(src, masks, run) = `forward` for L = sum(out ⊙ grad_out): accumulates
  // the parameters' gradients into grads and returns d src. The same masks and run options.
  tensor backward(const tensor& src, const result& forward, const tensor& grad_out,
                  transformer_encoder_grads& grads, const mha_masks& masks = {},
                  const run_options& run = {}) const;
  transformer_encoder_grads make_grads() const;
  // Every parameter with its gradient under `<prefix>self_attn.`, `<prefix>linear1.`, ...,
  // `<prefix>norm2.`, for an optimiser.
  std::vector<parameter> parameters(const std::string& prefix, transformer_encoder_grads& grads);

  const transformer_layer_config& config() const { return config_; }

 private:
  transformer_layer_config config_;
  multihead_attention self_attn_;
  feed_forward ffn_;
  layer_norm norm1_, norm2_;
};

}  // namespace qkv::nn
