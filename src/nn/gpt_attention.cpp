// gpt::attention_heads: one block's projected Q, K, V heads, read from the activations an
// inference forward pass keeps (so they are exactly what that block attended with).
#include "gpt_activations.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/gpt.hpp"

namespace qkv::nn {

gpt_attention_heads gpt::attention_heads(const std::vector<int32_t>& tokens, int64_t layer) const {
  if (layer < 0 || layer >= config_.layers)
    throw error("layer", "must be in [0, " + std::to_string(config_.layers) + "), the model has " +
                             std::to_string(config_.layers) + " layers; got " +
                             std::to_string(layer));
  const int64_t T = static_cast<int64_t>(tokens.size());
  std::shared_ptr<gpt_activations> act;
  forward(tokens, 1, T, gpt_step{}, &act);
  const mha_result& a = act->blocks[static_cast<size_t>(layer)].attn;
  // [1,H,T,hd] -> [H,T,hd]: one sequence.
  const auto drop_batch = [](const tensor_view& t) {
    return t.to_tensor().reshaped({t.size(1), t.size(2), t.size(3)});
  };
  return {drop_batch(a.q_heads()), drop_batch(a.k_heads()), drop_batch(a.v_heads())};
}

}  // namespace qkv::nn
