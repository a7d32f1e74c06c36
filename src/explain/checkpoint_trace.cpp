// Explaining a character-level GPT: a layer's Q, K, V heads from the model, attention from the
// reference kernel (trace_attention); every layer's for the model map.
#include "qkv/explain/checkpoint_trace.hpp"

#include "qkv/error.hpp"

namespace qkv::explain {
namespace {

// Head h of a [H,T,f] tensor as a [1,T,f] tensor.
tensor one_head(const tensor& t, int64_t h) {
  const int64_t T = t.size(1), f = t.size(2);
  const float* base = t.data() + h * T * f;
  return tensor({1, T, f}, std::vector<float>(base, base + T * f));
}

void check_range(const char* what, int64_t value, int64_t count, const char* counted) {
  if (value < 0 || value >= count)
    throw error(std::string(what) + ": must be in [0, " + std::to_string(count) +
                "), the model has " + std::to_string(count) + " " + counted + "; got " +
                std::to_string(value));
}

}  // namespace

attention_trace trace_gpt_layer(const nn::gpt& model, const std::vector<int32_t>& ids,
                                const std::vector<std::string>& tokens, int64_t layer,
                                std::optional<int64_t> head) {
  const nn::gpt_config& c = model.config();
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T < 1 || T > c.context || ids.size() != tokens.size())
    throw error("text: needs 1 to " + std::to_string(c.context) +
                " tokens (the model's context), got " + std::to_string(ids.size()));
  check_range("layer", layer, c.layers, "layers");
  if (head) check_range("head", *head, c.heads, "heads per layer");
  nn::gpt_attention_heads qkv = model.attention_heads(ids, layer);
  if (head) qkv = {one_head(qkv.q, *head), one_head(qkv.k, *head), one_head(qkv.v, *head)};
  return trace_attention(qkv.q, qkv.k, qkv.v, tokens, true);
}

attention_map map_gpt(const nn::gpt& model, const std::vector<int32_t>& ids,
                      const std::vector<std::string>& tokens, const map_selection& selection) {
  const nn::gpt_config& c = model.config();
  if (selection.layer) check_range("layer", *selection.layer, c.layers, "layers");
  if (selection.head) check_range("head", *selection.head, c.heads, "heads per layer");
  attention_map map;
  map.tokens = tokens;
  map.ids.assign(ids.begin(), ids.end());
  map.causal = true;
  map.model_layers = c.layers;
  map.model_heads = c.heads;
  std::vector<std::vector<matrix>> layers;
  for (int64_t l = 0; l < c.layers; ++l) {
    attention_trace trace = trace_gpt_layer(model, ids, tokens, l, std::nullopt);
    layers.emplace_back();
    for (int64_t h = 0; h < c.heads; ++h) {
      head_trace& steps = trace.heads[static_cast<size_t>(h)];
      layers.back().push_back(steps.weights);
      if ((selection.layer && *selection.layer != l) || (selection.head && *selection.head != h))
        continue;
      if (!selection.steps) {  // the weights (and which keys the mask hid) alone
        head_trace kept;
        kept.masked = std::move(steps.masked);
        kept.weights = std::move(steps.weights);
        steps = std::move(kept);
      }
      map.heads.push_back({l, h, std::move(steps)});
    }
  }
  map.words = group_words(tokens);
  map.rollout = attention_rollout(layers);
  return map;
}

}  // namespace qkv::explain
