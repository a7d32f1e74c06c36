// Drawing the next token from a model's logits, and the generation loop through a KV cache,
// shared by `qkv generate`'s models.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qkv/nn/counter_rng.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::cli {

// Draws from softmax(logits / temperature) restricted to the top_k largest (0: all); temperature
// 0 is greedy. u is uniform in [0, 1).
int32_t sample(std::vector<float> logits, double temperature, int64_t top_k, float u);

struct sampling_options {
  int64_t tokens = 0, top_k = 0;
  double temperature = 0;
  uint64_t seed = 0;
  int threads = 0;
  dtype kv_dtype = dtype::f32;  // what the KV cache stores K and V as
};

// Appends o.tokens sampled ids to `ids` (the prompt's, not empty), calling emit(id) on each as it
// comes. step(id, cache) feeds one id through a KV cache of `context` positions (storing
// o.kv_dtype) and returns the next logits; the prompt is fed once, then one id per step. When the
// window is full, the cache restarts on the last half context of the text (at least its last id).
template <typename Cache, typename Id, typename Step, typename Emit>
void generate_tokens(std::vector<Id>& ids, int64_t context, const sampling_options& o, Step step,
                     Emit emit) {
  const Cache empty{.layers = {}, .kv_dtype = o.kv_dtype};
  Cache cache = empty;
  std::vector<float> logits;
  size_t fed = 0;  // ids[0, fed) are in the cache
  for (int64_t n = 0; n < o.tokens; ++n) {
    if (static_cast<int64_t>(ids.size() - fed) + cache.length() > context) {
      // At least the last id, whose prediction comes next (a context of 1 keeps just it).
      cache = empty;
      fed = ids.size() - static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(1, context / 2),
                                                               static_cast<int64_t>(ids.size())));
    }
    while (fed < ids.size()) logits = step(ids[fed++], cache);
    ids.push_back(sample(logits, o.temperature, o.top_k,
                         nn::random_uniform(o.seed, 0, static_cast<uint64_t>(n))));
    emit(ids.back());
  }
}

}  // namespace qkv::cli
