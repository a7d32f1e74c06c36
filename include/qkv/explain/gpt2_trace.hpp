// Explaining a GPT-2 model (models/gpt2.hpp) on a sequence of token ids: every layer's and head's
// softmax weights from one forward pass, as a model map with its rollout.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qkv/explain/attention_map.hpp"
#include "qkv/models/gpt2.hpp"

namespace qkv::explain {

// The attention of every layer and head of `model` reading `ids` (1 to n_positions ids, each
// below vocab_size), whose token texts are `tokens`: map_of_layers of the forward pass's weights
// [L,H,T,T], causal, with the ids. No words: GPT-2's tokens are already words or pieces of words,
// so the views show tokens. Throws qkv::error naming ids, tokens, layer or head.
attention_map map_gpt2(const models::gpt2& model, std::span<const int64_t> ids,
                       std::vector<std::string> tokens, const map_selection& selection);

}  // namespace qkv::explain
