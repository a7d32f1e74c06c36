// The KV-cache decoding step. The Nk positions are filled with random keys and values directly:
// a prefill through the layer would cost O(Nk²) and is not what is measured.
#include "kv_cache_row.hpp"

#include <random>

namespace qkv::bench {

kv_cache_step::kv_cache_step(int64_t Nk, int64_t E, int64_t H, int threads, dtype type) : Nk_(Nk) {
  std::mt19937_64 rng(42);
  mha_ = nn::multihead_attention({.embed_dim = E, .num_heads = H}, rng);
  cache_ = mha_.make_cache(1, Nk + 1, type);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  tensor k({1, H, Nk, E / H}), v({1, H, Nk, E / H});
  x_ = tensor({1, 1, E});
  for (tensor* t : {&k, &v, &x_})
    for (float& value : t->values()) value = u(rng);
  cache_.append(k, v);
  options_.run.threads = threads;
}

void kv_cache_step::run() {
  mha_.forward_step(x_, cache_, options_);
}

double time_kv_cache_step_ms(int64_t Nk, int64_t E, int64_t H, int threads, dtype type,
                             const timing_plan& plan) {
  kv_cache_step step(Nk, E, H, threads, type);
  return median_ms(
      [&] {
        step.run();
        step.rewind();
      },
      plan);
}

}  // namespace qkv::bench
