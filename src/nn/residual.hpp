// The residual connection of the Transformer layers, x + sublayer(x), and what the encoder and
// decoder layers share: their sublayer blocks, forward and backward, in either norm order
//   post-norm: out = LN(in + f(in))       pre-norm: out = in + f(LN(in)),
// their attention options and their loaded config.
#pragma once

#include <string>

#include "elementwise.hpp"
#include "qkv/nn/layer_norm.hpp"
#include "qkv/nn/transformer_encoder_layer.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn::detail {

// One block forward; f(x) is the sublayer. `argument` names `in` in LN's errors.
template <typename F>
tensor residual_forward(bool norm_first, const layer_norm& norm, const tensor& in,
                        residual_activations& a, F&& f, const std::string& argument = "x") {
  if (norm_first) {
    a.normed = norm.forward(in, argument);
    return add(in, f(a.normed));
  }
  a.sum = add(in, f(in));
  return norm.forward(a.sum);
}

// The block's backward: d in from d out. f_backward(x, dy) differentiates the sublayer at its
// input x for the gradient dy of its output (accumulating its parameters' gradients) and
// returns dx.
//   post-norm: d sum = LN'(d out),  d in = d sum + f'(d sum)
//   pre-norm:  d in = d out + LN'(f'(d out))
template <typename F>
tensor residual_backward(bool norm_first, const layer_norm& norm, layer_norm_grads& norm_grads,
                         const tensor& in, const residual_activations& a, const tensor& dout,
                         F&& f_backward) {
  if (norm_first) {
    tensor din = dout;
    norm.backward_add(in, f_backward(a.normed, dout), norm_grads, din);
    return din;
  }
  const tensor dsum = norm.backward(a.sum, dout, norm_grads);
  return add(dsum, f_backward(in, dsum));
}

// The self-attention block, f(x) = SA(x, x, x), keeping SA's activations in `attn`.
inline tensor self_attention_block(bool norm_first, const layer_norm& norm,
                                   const multihead_attention& sa, const mha_options& o,
                                   const tensor& in, residual_activations& a, mha_result& attn,
                                   const std::string& argument) {
  return residual_forward(
      norm_first, norm, in, a,
      [&](const tensor& x) {
        attn = sa.forward(x, x, x, o);
        return attn.out;
      },
      argument);
}

// Its backward: x is query, key and value, so dx is the sum of the three gradients.
inline tensor self_attention_block_backward(bool norm_first, const layer_norm& norm,
                                            layer_norm_grads& norm_grads,
                                            const multihead_attention& sa, mha_grads& grads,
                                            const mha_options& o, const tensor& in,
                                            const residual_activations& a, const mha_result& attn,
                                            const tensor& dout) {
  return residual_backward(norm_first, norm, norm_grads, in, a, dout,
                           [&](const tensor& x, const tensor& dy) {
                             return sa.backward_self(x, attn, dy, grads, o).query;
                           });
}

// The feed-forward block, f = FFN, keeping its hidden layer in `cache`; and its backward.
inline tensor feed_forward_block(bool norm_first, const layer_norm& norm, const feed_forward& ffn,
                                 const tensor& in, residual_activations& a,
                                 feed_forward_cache& cache) {
  return residual_forward(norm_first, norm, in, a,
                          [&](const tensor& x) { return ffn.forward(x, cache); });
}
inline tensor feed_forward_block_backward(bool norm_first, const layer_norm& norm,
                                          layer_norm_grads& norm_grads, const feed_forward& ffn,
                                          feed_forward_grads& grads, const tensor& in,
                                          const residual_activations& a,
                                          const feed_forward_cache& cache, const tensor& dout) {
  return residual_backward(
      norm_first, norm, norm_grads, in, a, dout,
      [&](const tensor& x, const tensor& dy) { return ffn.backward(x, cache, dy, grads); });
}

// A loaded layer's config: the given one with E and F taken from its tensors.
inline transformer_layer_config loaded_config(transformer_layer_config c, int64_t E, int64_t F) {
  c.d_model = E;
  c.dim_feedforward = F;
  return c;
}

// The attention options of a layer's forward and backward (errors name the mask with `prefix`).
inline mha_options layer_attention_options(const mha_masks& masks, const run_options& run,
                                           const char* prefix) {
  return {.masks = masks, .run = run, .mask_prefix = prefix};
}

}  // namespace qkv::nn::detail
