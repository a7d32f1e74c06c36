// nn.TransformerDecoderLayer(batch_first=True, dropout=0): self-attention over the target,
// cross-attention to the memory, feed-forward; residuals and LayerNorms post or pre:
//   post: h1 = LN1(x + SA(x));  h2 = LN2(h1 + CA(h1, m));  out = LN3(h2 + FFN(h2))
//   pre:  h1 = x + SA(LN1(x));  h2 = h1 + CA(LN2(h1), m);  out = h2 + FFN(LN3(h2))
// state_dict names: self_attn.*, multihead_attn.*, linear1.*, linear2.*, norm1/2/3.*.
#pragma once

#include <random>
#include <string>

#include "qkv/nn/feed_forward.hpp"
#include "qkv/nn/layer_norm.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/nn/transformer_layer.hpp"

namespace qkv::nn {

// Gradients of a decoder layer's parameters (accumulated by backward).
struct transformer_decoder_grads {
  mha_grads self_attn, cross_attn;
  feed_forward_grads ffn;
  layer_norm_grads norm1, norm2, norm3;
};
// Gradients of the decoder layer's inputs.
struct decoder_input_grads {
  tensor tgt, memory;
};

class transformer_decoder_layer {
 public:
  transformer_decoder_layer() = default;
  transformer_decoder_layer(const transformer_layer_config& config, std::mt19937_64& rng);
  // As transformer_encoder_layer::load, plus multihead_attn.* and norm3.*.
  static transformer_decoder_layer load(state_dict_reader& reader, const std::string& prefix,
                                        const transformer_layer_config& config);
  void save(state_dict& dict, const std::string& prefix) const;

  struct result {
    tensor out;             // [B,T,E]
    mha_result self_attn;   // SA's activations
    mha_result cross_attn;  // CA's activations
    tensor h1, h2;          // after each attention block (their outputs)
    residual_activations self_block, cross_block, ffn_block;
    feed_forward_cache ffn;
  };
  // tgt [B,T,E], memory [B,S,E]. tgt_masks: tgt_mask [T,T] (or [B·H,T,T]),
  // tgt_key_padding_mask [B,T], is_causal; memory_masks: memory_mask [T,S],
  // memory_key_padding_mask [B,S]. PyTorch's meanings (bool true = masked out; float added).
  result forward(const tensor& tgt, const tensor& memory, const mha_masks& tgt_masks = {},
                 const mha_masks& memory_masks = {}, const run_options& run = {}) const;

  // Backward of forward(tgt, memory, ...) = `forward` for L = sum(out ⊙ grad_out): accumulates
  // the parameters' gradients into grads and returns d tgt and d memory. The same masks and run.
  decoder_input_grads backward(const tensor& tgt, const tensor& memory, const result& forward,
                               const tensor& grad_out, transformer_decoder_grads& grads,
                               const mha_masks& tgt_masks = {}, const mha_masks& memory_masks = {},
                               const run_options& run = {}) const;
  transformer_decoder_grads make_grads() const;
  // As transformer_encoder_layer::parameters, plus `<prefix>multihead_attn.` and `norm3.`.
  std::vector<parameter> parameters(const std::string& prefix, transformer_decoder_grads& grads);

  const transformer_layer_config& config() const { return config_; }

 private:
  transformer_layer_config config_;
  multihead_attention self_attn_, cross_attn_;
  feed_forward ffn_;
  layer_norm norm1_, norm2_, norm3_;
};

}  // namespace qkv::nn
