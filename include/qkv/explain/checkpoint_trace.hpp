// Explaining a character-level GPT (nn/gpt.hpp) on a text: a layer's heads step by step, or the
// attention of every layer and head as a model map with its words and rollout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/trace.hpp"
#include "qkv/nn/gpt.hpp"

namespace qkv::explain {

// Block `layer`'s attention (causal, as the GPT is a decoder) when `model` reads `ids`, whose
// token texts are `tokens`: every head, or only `head`. The heads' Q, K, V are the model's own
// projections; the rest comes from the reference kernel (trace_attention). Throws qkv::error
// naming text, layer or head and the model's counts.
attention_trace trace_gpt_layer(const nn::gpt& model, const std::vector<int32_t>& ids,
                                const std::vector<std::string>& tokens, int64_t layer,
                                std::optional<int64_t> head);

// The attention of every layer and head of `model` reading `ids` (token texts `tokens`):
// map_of_layers with the ids and the words of the tokens. Throws qkv::error naming text, layer
// or head.
attention_map map_gpt(const nn::gpt& model, const std::vector<int32_t>& ids,
                      const std::vector<std::string>& tokens, const map_selection& selection);

}  // namespace qkv::explain
