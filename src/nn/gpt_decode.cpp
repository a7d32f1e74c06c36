// One GPT decoding step with a KV cache: the new token's query attends over the keys and values
// of every token so far, which are computed once and kept (per layer, [H,n,hd]), so generating n
// tokens costs O(n) projections instead of O(n²).
#include <algorithm>

#include "gpt_activations.hpp"
#include "qkv/error.hpp"

namespace qkv::nn {
namespace {

constexpr float ln_eps = 1e-5f;

// [1,H,n,hd] from the cache's per-head rows (stored [H][context][hd]).
tensor cached_heads(const std::vector<float>& cache, int64_t H, int64_t context, int64_t n,
                    int64_t hd) {
  tensor t({1, H, n, hd});
  for (int64_t h = 0; h < H; ++h)
    std::copy(cache.begin() + h * context * hd, cache.begin() + (h * context + n) * hd,
              t.data() + h * n * hd);
  return t;
}

}  // namespace

std::vector<float> gpt::decode_step(int32_t token, gpt_kv_cache& cache, int threads) const {
  const int64_t E = config_.embed, T = config_.context, n = cache.length;
  if (n >= T)
    throw error("decode: the KV cache holds " + std::to_string(n) +
                " tokens, the model's context is " + std::to_string(T));
  if (token < 0 || token >= config_.vocab)
    throw error("decode: token " + std::to_string(token) + " outside the vocabulary");
  if (cache.k.empty()) {
    for (const gpt_block& b : blocks_) {
      const auto size = static_cast<size_t>(b.attn.kv_heads() * T * b.attn.head_dim());
      cache.k.emplace_back(size);
      cache.v.emplace_back(size);
    }
  }
  tensor x({1, 1, E});
  for (int64_t e = 0; e < E; ++e) x[e] = wte_[token * E + e] + wpe_[n * E + e];
  sdpa_options sdpa;
  sdpa.threads = threads;
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const gpt_block& b = blocks_[l];
    const int64_t H = b.attn.num_heads(), Hkv = b.attn.kv_heads(), hd = b.attn.head_dim();
    detail::layer_norm_cache ln;
    const tensor h1 = detail::layer_norm_forward(x, b.ln1_w, b.ln1_b, ln_eps, ln);
    // With one token, [1,1,H·hd] and [1,H,1,hd] are the same memory.
    const tensor q = b.attn.q_proj().forward(h1).reshaped({1, H, 1, hd});
    const tensor k = b.attn.k_proj().forward(h1), v = b.attn.v_proj().forward(h1);
    for (int64_t h = 0; h < Hkv; ++h) {
      std::copy(k.data() + h * hd, k.data() + (h + 1) * hd, cache.k[l].begin() + (h * T + n) * hd);
      std::copy(v.data() + h * hd, v.data() + (h + 1) * hd, cache.v[l].begin() + (h * T + n) * hd);
    }
    // The one query is the newest position: every cached key is visible, no mask needed.
    const sdpa_result o = sdpa_forward(q, cached_heads(cache.k[l], Hkv, T, n + 1, hd),
                                       cached_heads(cache.v[l], Hkv, T, n + 1, hd), sdpa);
    x = detail::add(x, b.attn.out_proj().forward(o.out.reshaped({1, 1, E})));
    const tensor h2 = detail::layer_norm_forward(x, b.ln2_w, b.ln2_b, ln_eps, ln);
    x = detail::add(x, b.fc2.forward(detail::gelu_forward(b.fc1.forward(h2))));
  }
  ++cache.length;
  detail::layer_norm_cache ln;
  const tensor logits = head_.forward(detail::layer_norm_forward(x, lnf_w_, lnf_b_, ln_eps, ln));
  return std::vector<float>(logits.values().begin(), logits.values().end());
}

}  // namespace qkv::nn
