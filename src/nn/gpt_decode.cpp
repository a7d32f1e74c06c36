// One GPT decoding step with a KV cache: the new token's query attends over the keys and values
// of every token so far, computed once and kept per layer by the MHA's kv_cache, so generating n
// tokens costs O(n) projections instead of O(n²). The caches store K/V as the session's kv_dtype.
#include "gpt_activations.hpp"
#include "qkv/error.hpp"
#include "residual.hpp"

namespace qkv::nn {

std::vector<float> gpt::decode_step(int32_t token, gpt_kv_cache& cache, int threads) const {
  const int64_t T = config_.context, n = cache.length();
  if (n >= T)
    throw error("decode", "the KV cache holds " + std::to_string(n) +
                              " tokens, the model's context is " + std::to_string(T));
  if (cache.layers.empty())
    for (const gpt_block& b : blocks_)
      cache.layers.push_back(b.attn.make_cache(1, T, cache.kv_dtype));
  const int64_t id = token, position = n;
  tensor x = detail::add(wte_.forward({&id, 1}, {1, 1}), wpe_.forward({&position, 1}, {1, 1}));
  mha_options options;
  options.run.threads = threads;
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const gpt_block& b = blocks_[l];
    x = detail::add(std::move(x),
                    b.attn.forward_step(b.ln1.forward(x), cache.layers[l], options).out);
    x = detail::add(std::move(x), b.mlp.forward(b.ln2.forward(x)));
  }
  const tensor logits = head_.forward(ln_f_.forward(x));
  return std::vector<float>(logits.values().begin(), logits.values().end());
}

}  // namespace qkv::nn
