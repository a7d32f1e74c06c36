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
  layer.config_ = detail::loaded_config(c, E, layer.ffn_.dim_feedforward());
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

transformer_decoder_layer::result transformer_decoder_layer::forward(const tensor& tgt,
                                                                     const tensor& memory,
                                                                     const mha_masks& tgt_masks,
                                                                     const mha_masks& memory_masks,
                                                                     const run_options& run) const {
  const int64_t E = config_.d_model;
  if (tgt.rank() != 3 || tgt.size(2) != E)
    throw error("tgt", "expected [B,T,E] with E = " + std::to_string(E) + ", got " +
                           to_string(tgt.shape()));
  if (memory.rank() != 3 || memory.size(2) != E || memory.size(0) != tgt.size(0))
    throw error("memory", "expected [B,S,E] with B = " + std::to_string(tgt.size(0)) + " and E = " +
                              std::to_string(E) + ", got " + to_string(memory.shape()));
  const mha_options self_o = detail::layer_attention_options(tgt_masks, run, "tgt_");
  const mha_options cross_o = detail::layer_attention_options(memory_masks, run, "memory_");
  const bool pre = config_.norm_first;
  result r;
  r.h1 = detail::self_attention_block(pre, norm1_, self_attn_, self_o, tgt, r.self_block,
                                      r.self_attn, "tgt");
  r.h2 = detail::residual_forward(pre, norm2_, r.h1, r.cross_block, [&](const tensor& x) {
    r.cross_attn = cross_attn_.forward(x, memory, memory, cross_o);
    return r.cross_attn.out;
  });
  r.out = detail::feed_forward_block(pre, norm3_, ffn_, r.h2, r.ffn_block, r.ffn);
  return r;
}

decoder_input_grads transformer_decoder_layer::backward(
    const tensor& tgt, const tensor& memory, const result& forward, const tensor& grad_out,
    transformer_decoder_grads& grads, const mha_masks& tgt_masks, const mha_masks& memory_masks,
    const run_options& run) const {
  if (grad_out.shape() != forward.out.shape())
    throw error("grad_out", "expected the output's shape " + to_string(forward.out.shape()) +
                                ", got " + to_string(grad_out.shape()));
  const mha_options self_o = detail::layer_attention_options(tgt_masks, run, "tgt_");
  const mha_options cross_o = detail::layer_attention_options(memory_masks, run, "memory_");
  const bool pre = config_.norm_first;
  decoder_input_grads in;
  // The blocks in reverse: out = block3(h2), h2 = block2(h1; memory), h1 = block1(tgt).
  const tensor dh2 =
      detail::feed_forward_block_backward(pre, norm3_, grads.norm3, ffn_, grads.ffn, forward.h2,
                                          forward.ffn_block, forward.ffn, grad_out);
  const tensor dh1 = detail::residual_backward(
      pre, norm2_, grads.norm2, forward.h1, forward.cross_block, dh2,
      [&](const tensor& x, const tensor& dy) {
        // Cross-attention: memory is both key and value.
        const mha_input_grads d = cross_attn_.backward(x, memory, memory, forward.cross_attn, dy,
                                                       grads.cross_attn, cross_o);
        in.memory = detail::add(d.key, d.value);
        return d.query;
      });
  in.tgt = detail::self_attention_block_backward(pre, norm1_, grads.norm1, self_attn_,
                                                 grads.self_attn, self_o, tgt, forward.self_block,
                                                 forward.self_attn, dh1);
  return in;
}

transformer_decoder_grads transformer_decoder_layer::make_grads() const {
  return {self_attn_.make_grads(), cross_attn_.make_grads(), ffn_.make_grads(),
          norm1_.make_grads(),     norm2_.make_grads(),      norm3_.make_grads()};
}

std::vector<parameter> transformer_decoder_layer::parameters(const std::string& prefix,
                                                             transformer_decoder_grads& grads) {
  std::vector<parameter> params;
  append_parameters(params, self_attn_.parameters(prefix + "self_attn.", grads.self_attn));
  append_parameters(params, cross_attn_.parameters(prefix + "multihead_attn.", grads.cross_attn));
  append_parameters(params, ffn_.parameters(prefix, grads.ffn));
  append_parameters(params, norm1_.parameters(prefix + "norm1.", grads.norm1));
  append_parameters(params, norm2_.parameters(prefix + "norm2.", grads.norm2));
  append_parameters(params, norm3_.parameters(prefix + "norm3.", grads.norm3));
  return params;
}

}  // namespace qkv::nn
