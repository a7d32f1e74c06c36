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
  layer.config_ = c;
  layer.config_.d_model = E;
  layer.config_.dim_feedforward = layer.ffn_.dim_feedforward();
  return layer;
}

void transformer_encoder_layer::save(state_dict& dict, const std::string& prefix) const {
  self_attn_.save(dict, prefix + "self_attn.");
  ffn_.save(dict, prefix);
  norm1_.save(dict, prefix + "norm1.");
  norm2_.save(dict, prefix + "norm2.");
}

transformer_encoder_layer::result transformer_encoder_layer::forward(
    const tensor& src, const mha_masks& masks, const layer_run_options& run) const {
  const int64_t E = config_.d_model;
  if (src.rank() != 3 || src.size(2) != E)
    throw error("src: expected [B,S,E] with E = " + std::to_string(E) + ", got " +
                to_string(src.shape()));
  mha_options o{.masks = masks, .impl = run.impl, .threads = run.threads, .mask_prefix = "src_"};
  result r;
  if (config_.norm_first) {
    const tensor x = norm1_.forward(src, "src");
    r.self_attn = self_attn_.forward(x, x, x, o);
    r.h = detail::add(src, r.self_attn.out);
    r.out = detail::add(r.h, ffn_.forward(norm2_.forward(r.h)));
  } else {
    r.self_attn = self_attn_.forward(src, src, src, o);
    r.h = norm1_.forward(detail::add(src, r.self_attn.out));
    r.out = norm2_.forward(detail::add(r.h, ffn_.forward(r.h)));
  }
  return r;
}

}  // namespace qkv::nn
