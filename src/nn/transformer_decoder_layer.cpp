// nn.TransformerDecoderLayer. Legend: B batch, T target tokens, S memory tokens, E model dim.
#include "qkv/nn/transformer_decoder_layer.hpp"

#include "qkv/error.hpp"
#include "residual.hpp"

namespace qkv::nn {

transformer_decoder_layer::transformer_decoder_layer(const transformer_layer_config& c,
                                                     std::mt19937_64& rng)
    : config_(c),
      self_attn_({.embed_dim = c.d_model, .num_heads = c.nhead}, rng),
      cross_attn_({.embed_dim = c.d_model, .num_heads = c.nhead}, rng),
      ffn_(c.d_model, c.dim_feedforward, c.act, rng),
      norm1_(c.d_model, c.layer_norm_eps),
      norm2_(c.d_model, c.layer_norm_eps),
      norm3_(c.d_model, c.layer_norm_eps) {}

transformer_decoder_layer transformer_decoder_layer::load(state_dict_reader& reader,
                                                          const std::string& prefix,
                                                          const transformer_layer_config& c) {
  transformer_decoder_layer layer;
  layer.self_attn_ = multihead_attention::load(reader, prefix + "self_attn.", c.nhead);
  layer.cross_attn_ = multihead_attention::load(reader, prefix + "multihead_attn.", c.nhead);
  layer.ffn_ = feed_forward::load(reader, prefix, c.act);
  const int64_t E = layer.self_attn_.embed_dim();
  if (layer.cross_attn_.embed_dim() != E || layer.ffn_.d_model() != E)
    reader.fail("multihead_attn.* and linear1.weight must have the model dim E = " +
                std::to_string(E) + " of self_attn");
  layer.norm1_ = layer_norm::load(reader, prefix + "norm1.", E, c.layer_norm_eps);
  layer.norm2_ = layer_norm::load(reader, prefix + "norm2.", E, c.layer_norm_eps);
  layer.norm3_ = layer_norm::load(reader, prefix + "norm3.", E, c.layer_norm_eps);
  layer.config_ = c;
  layer.config_.d_model = E;
  layer.config_.dim_feedforward = layer.ffn_.dim_feedforward();
  return layer;
}

void transformer_decoder_layer::save(state_dict& dict, const std::string& prefix) const {
  self_attn_.save(dict, prefix + "self_attn.");
  cross_attn_.save(dict, prefix + "multihead_attn.");
  ffn_.save(dict, prefix);
  norm1_.save(dict, prefix + "norm1.");
  norm2_.save(dict, prefix + "norm2.");
  norm3_.save(dict, prefix + "norm3.");
}

transformer_decoder_layer::result transformer_decoder_layer::forward(
    const tensor& tgt, const tensor& memory, const mha_masks& tgt_masks,
    const mha_masks& memory_masks, const layer_run_options& run) const {
  const int64_t E = config_.d_model;
  if (tgt.rank() != 3 || tgt.size(2) != E)
    throw error("tgt: expected [B,T,E] with E = " + std::to_string(E) + ", got " +
                to_string(tgt.shape()));
  if (memory.rank() != 3 || memory.size(2) != E || memory.size(0) != tgt.size(0))
    throw error("memory: expected [B,S,E] with B = " + std::to_string(tgt.size(0)) +
                " and E = " + std::to_string(E) + ", got " + to_string(memory.shape()));
  const mha_options self_o{
      .masks = tgt_masks, .impl = run.impl, .threads = run.threads, .mask_prefix = "tgt_"};
  const mha_options cross_o{
      .masks = memory_masks, .impl = run.impl, .threads = run.threads, .mask_prefix = "memory_"};
  result r;
  if (config_.norm_first) {
    const tensor x = norm1_.forward(tgt, "tgt");
    r.self_attn = self_attn_.forward(x, x, x, self_o);
    r.h1 = detail::add(tgt, r.self_attn.out);
    r.cross_attn = cross_attn_.forward(norm2_.forward(r.h1), memory, memory, cross_o);
    r.h2 = detail::add(r.h1, r.cross_attn.out);
    r.out = detail::add(r.h2, ffn_.forward(norm3_.forward(r.h2)));
  } else {
    r.self_attn = self_attn_.forward(tgt, tgt, tgt, self_o);
    r.h1 = norm1_.forward(detail::add(tgt, r.self_attn.out));
    r.cross_attn = cross_attn_.forward(r.h1, memory, memory, cross_o);
    r.h2 = norm2_.forward(detail::add(r.h1, r.cross_attn.out));
    r.out = norm3_.forward(detail::add(r.h2, ffn_.forward(r.h2)));
  }
  return r;
}

}  // namespace qkv::nn
