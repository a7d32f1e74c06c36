// Explaining a character-level GPT: a layer's Q, K, V heads from the model, attention from the
// reference kernel (trace_attention); every layer's for the model map.
#include "qkv/explain/checkpoint_trace.hpp"

#include "format.hpp"
#include "qkv/error.hpp"

namespace qkv::explain {
namespace {

// Head h of a [H,T,f] tensor as a [1,T,f] tensor.
tensor one_head(const tensor& t, int64_t h) {
  const int64_t T = t.size(1), f = t.size(2);
  const float* base = t.data() + h * T * f;
  return tensor({1, T, f}, std::vector<float>(base, base + T * f));
}

}  // namespace

attention_trace trace_gpt_layer(const nn::gpt& model, const std::vector<int32_t>& ids,
                                const std::vector<std::string>& tokens, int64_t layer,
                                std::optional<int64_t> head) {
  const nn::gpt_config& c = model.config();
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T < 1 || T > c.context || ids.size() != tokens.size())
    throw error("text", "needs 1 to " + std::to_string(c.context) +
                            " tokens (the model's context), got " + std::to_string(ids.size()));
  detail::check_range("layer", layer, c.layers, "layers");
  if (head) detail::check_range("head", *head, c.heads, "heads per layer");
  nn::gpt_attention_heads qkv = model.attention_heads(ids, layer);
  if (head) qkv = {one_head(qkv.q, *head), one_head(qkv.k, *head), one_head(qkv.v, *head)};
  return trace_attention(qkv.q, qkv.k, qkv.v, tokens, true);
}

attention_map map_gpt(const nn::gpt& model, const std::vector<int32_t>& ids,
                      const std::vector<std::string>& tokens, const map_selection& selection) {
  const nn::gpt_config& c = model.config();
  std::vector<std::vector<head_trace>> layers;
  for (int64_t l = 0; l < c.layers; ++l)
    layers.push_back(trace_gpt_layer(model, ids, tokens, l, std::nullopt).heads);
  attention_map map = map_of_layers(std::move(layers), tokens, true, selection);
  map.ids.assign(ids.begin(), ids.end());
  map.words = group_words(tokens);
  return map;
}

}  // namespace qkv::explain
