// Explaining GPT-2: the forward pass reports every head's weights (computed by the reference
// attention kernel); the map takes them as they are.
#include "qkv/explain/gpt2_trace.hpp"

#include "format.hpp"
#include "qkv/error.hpp"

namespace qkv::explain {

attention_map map_gpt2(const models::gpt2& model, std::span<const int64_t> ids,
                       std::vector<std::string> tokens, const map_selection& selection) {
  const models::gpt2_config& c = model.config();
  const auto T = static_cast<int64_t>(ids.size());
  if (tokens.size() != ids.size())
    throw error("tokens", "one text per id, got " + std::to_string(tokens.size()) + " for " +
                              detail::count_of(T, "id"));
  // The selection is checked before the forward pass (which checks the ids), the costly part.
  if (selection.layer) detail::check_range("layer", *selection.layer, c.layers, "layers");
  if (selection.head) detail::check_range("head", *selection.head, c.heads, "heads per layer");
  const tensor attention = *model.forward(ids, /*attention_weights=*/true).attention;
  std::vector<std::vector<head_trace>> layers(static_cast<size_t>(c.layers));
  for (int64_t l = 0; l < c.layers; ++l)
    for (int64_t h = 0; h < c.heads; ++h) {
      const float* p = attention.data() + (l * c.heads + h) * T * T;
      head_trace head;
      head.weights = {T, T, std::vector<double>(p, p + T * T)};
      layers[static_cast<size_t>(l)].push_back(std::move(head));
    }
  attention_map map = map_of_layers(std::move(layers), std::move(tokens), true, selection);
  map.ids.assign(ids.begin(), ids.end());
  return map;
}

}  // namespace qkv::explain
