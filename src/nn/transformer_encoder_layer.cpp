// nn.TransformerEncoderLayer. Legend: B batch, S tokens, E model dim, H heads, F feed-forward dim.
#include "qkv/nn/transformer_encoder_layer.hpp"

#include "qkv/error.hpp"
#include "residual.hpp"

namespace qkv::nn {

transformer_encoder_layer::transformer_encoder_layer(const transformer_layer_config& c,
                                                     std::mt19937_64& rng)
    : config_(c),
      self_attn_({.embed_dim = c.d_model, .num_heads = c.nhead}, rng),
      ffn_(c.d_model, c.dim_feedforward, c.act, rng),
      norm1_(c.d_model, c.layer_norm_eps),
      norm2_(c.d_model, c.layer_norm_eps) {}

transformer_encoder_layer transformer_encoder_layer::load(state_dict_reader& reader,
                                                          const std::string& prefix,
                                                          const transformer_layer_config& c) {
  transformer_encoder_layer layer;
  layer.self_attn_ = multihead_attention::load(reader, prefix + "self_attn.", c.nhead);
  layer.ffn_ = feed_forward::load(reader, prefix, c.act);
  const int64_t E = layer.self_attn_.embed_dim();
  if (layer.ffn_.d_model() != E)
    reader.fail("tensor '" + prefix + "linear1.weight' must be [F,E] with E = " +
                std::to_string(E) + " (from self_attn)");
  layer.norm1_ = layer_norm::load(reader, prefix + "norm1.", E, c.layer_norm_eps);
  layer.norm2_ = layer_norm::load(reader, prefix + "norm2.", E, c.layer_norm_eps);
  layer.config_ = detail::loaded_config(c, E, layer.ffn_.dim_feedforward());
  return layer;
}

void transformer_encoder_layer::save(state_dict& dict, const std::string& prefix) const {
  self_attn_.save(dict, prefix + "self_attn.");
  ffn_.save(dict, prefix);
  norm1_.save(dict, prefix + "norm1.");
  norm2_.save(dict, prefix + "norm2.");
}

transformer_encoder_layer::result transformer_encoder_layer::forward(const tensor& src,
                                                                     const mha_masks& masks,
                                                                     const run_options& run) const {
  const int64_t E = config_.d_model;
  if (src.rank() != 3 || src.size(2) != E)
    throw error("src", "expected [B,S,E] with E = " + std::to_string(E) + ", got " +
                           to_string(src.shape()));
  const mha_options o = detail::layer_attention_options(masks, run, "src_");
  const bool pre = config_.norm_first;
  result r;
  r.h = detail::self_attention_block(pre, norm1_, self_attn_, o, src, r.attn_block, r.self_attn,
                                     "src");
  r.out = detail::feed_forward_block(pre, norm2_, ffn_, r.h, r.ffn_block, r.ffn);
  return r;
}

tensor transformer_encoder_layer::backward(const tensor& src, const result& forward,
                                           const tensor& grad_out, transformer_encoder_grads& grads,
                                           const mha_masks& masks, const run_options& run) const {
  if (grad_out.shape() != forward.out.shape())
    throw error("grad_out", "expected the output's shape " + to_string(forward.out.shape()) +
                                ", got " + to_string(grad_out.shape()));
  const mha_options o = detail::layer_attention_options(masks, run, "src_");
  const bool pre = config_.norm_first;
  // The blocks in reverse: out = block2(h), h = block1(src).
  const tensor dh =
      detail::feed_forward_block_backward(pre, norm2_, grads.norm2, ffn_, grads.ffn, forward.h,
                                          forward.ffn_block, forward.ffn, grad_out);
  return detail::self_attention_block_backward(pre, norm1_, grads.norm1, self_attn_,
                                               grads.self_attn, o, src, forward.attn_block,
                                               forward.self_attn, dh);
}

transformer_encoder_grads transformer_encoder_layer::make_grads() const {
  return {self_attn_.make_grads(), ffn_.make_grads(), norm1_.make_grads(), norm2_.make_grads()};
}

std::vector<parameter> transformer_encoder_layer::parameters(const std::string& prefix,
                                                             transformer_encoder_grads& grads) {
  std::vector<parameter> params;
  append_parameters(params, self_attn_.parameters(prefix + "self_attn.", grads.self_attn));
  append_parameters(params, ffn_.parameters(prefix, grads.ffn));
  append_parameters(params, norm1_.parameters(prefix + "norm1.", grads.norm1));
  append_parameters(params, norm2_.parameters(prefix + "norm2.", grads.norm2));
  return params;
}

}  // namespace qkv::nn
