// Timing nn::multihead_attention's forward and, on the same projected heads, its attention alone.
#include "mha_row.hpp"

#include <random>

#include "composition.hpp"
#include "qkv/nn/multihead_attention.hpp"

namespace qkv::bench {

mha_timing time_mha_forward(int64_t B, int64_t N, int64_t E, int64_t H, int threads,
                            const timing_plan& plan) {
  std::mt19937_64 rng(42);
  const nn::multihead_attention layer({.embed_dim = E, .num_heads = H}, rng);
  tensor x({B, N, E});
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : x.values()) v = u(rng);
  nn::mha_options options;
  options.run.impl = sdpa_impl::fused;
  options.run.threads = threads;
  sdpa_options sdpa;
  sdpa.run.impl = sdpa_impl::fused;
  sdpa.run.threads = threads;

  set_blas_threads(threads);  // the projections are OpenBLAS sgemm
  mha_timing t;
  t.ms = median_ms([&] { layer.forward(x, x, x, options); }, plan);
  const nn::mha_result heads = layer.forward(x, x, x, options);
  t.attention_ms = median_ms(
      [&] { sdpa_forward(heads.q_heads(), heads.k_heads(), heads.v_heads(), sdpa); }, plan);
  const double b = double(B), n = double(N), e = double(E);
  t.flops = 4 * 2 * b * n * e * e + 4 * b * n * n * e;
  return t;
}

}  // namespace qkv::bench
