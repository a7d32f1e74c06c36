// Drawing the next token from a model's logits, shared by `qkv generate`'s models.
#pragma once

#include <cstdint>
#include <vector>

namespace qkv::cli {

// Draws from softmax(logits / temperature) restricted to the top_k largest (0: all); temperature
// 0 is greedy. u is uniform in [0, 1).
int32_t sample(std::vector<float> logits, double temperature, int64_t top_k, float u);

}  // namespace qkv::cli
