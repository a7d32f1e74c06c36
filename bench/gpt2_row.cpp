// GPT-2-small timing: a generation step through the KV cache (memory-bound: every weight is read
// once per token) and the 1024-token prefill (compute-bound: sgemm-shaped products).
#include "gpt2_row.hpp"

#include <random>

#include "composition.hpp"
#include "qkv/models/gpt2.hpp"

namespace qkv::bench {
namespace {

constexpr int64_t L = 12, H = 12, E = 768, F = 4 * E, V = 50257, P = 1024;
constexpr int64_t cached = 128, prefill = 1024;

// GPT2Model's tensors, Conv1D layout, N(0, 0.02) weights and zero biases, unit LayerNorms.
models::gpt2 make_model() {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> n(0.0f, 0.02f);
  const auto normal = [&](shape_t shape) {
    tensor t(std::move(shape));
    for (float& x : t.values()) x = n(rng);
    return t;
  };
  io::named_tensors w;
  w["wte.weight"] = normal({V, E});
  w["wpe.weight"] = normal({P, E});
  const auto norm = [&](const std::string& p) {
    w[p + "weight"] = tensor({E}, 1.0f);
    w[p + "bias"] = tensor({E});
  };
  const auto conv = [&](const std::string& p, int64_t in, int64_t out) {
    w[p + "weight"] = normal({in, out});
    w[p + "bias"] = tensor({out});
  };
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    norm(p + "ln_1.");
    conv(p + "attn.c_attn.", E, 3 * E);
    conv(p + "attn.c_proj.", E, E);
    norm(p + "ln_2.");
    conv(p + "mlp.c_fc.", E, F);
    conv(p + "mlp.c_proj.", F, E);
  }
  norm("ln_f.");
  models::gpt2_config c{V, P, E, H, L, F};
  return models::gpt2::from_tensors(c, std::move(w), "random GPT-2 small");
}

}  // namespace

gpt2_timing time_gpt2_small(int threads, const timing_plan& plan) {
  static const models::gpt2 m = make_model();
  set_blas_threads(threads);  // the Linear layers run on the caller's OpenMP threads
  std::vector<int64_t> ids(prefill);
  for (int64_t t = 0; t < prefill; ++t) ids[static_cast<size_t>(t)] = (t * 7919) % V;

  gpt2_timing r;
  const double matmul_weights = double(L) * (4.0 * E * E + 2.0 * E * F) + double(V) * E;
  r.weight_bytes = m.step_weight_bytes();
  models::gpt2_cache cache;
  for (int64_t t = 0; t < cached; ++t) m.decode_step(ids[static_cast<size_t>(t)], cache, threads);
  r.step_ms = median_ms(
      [&] {
        m.decode_step(ids[cached], cache, threads);
        for (nn::kv_cache& layer : cache.layers) layer.truncate(cached);
      },
      plan);
  r.step_flops = 2.0 * matmul_weights + 4.0 * double(L * E) * double(cached + 1);
  r.prefill_ms = median_ms([&] { m.forward(ids, false, threads); }, plan);
  r.prefill_flops = 2.0 * double(prefill) * matmul_weights +
                    4.0 * double(L * E) * double(prefill) * double(prefill + 1) / 2.0;
  return r;
}

}  // namespace qkv::bench
