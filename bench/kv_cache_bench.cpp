// One KV-cache decoding step of nn::multihead_attention (B=1, E=512, H=8, one new token) with
// Nk = 1024, 4096, 16384 keys already cached: the step's cost should grow as O(Nk·d) (the
// attention reads the cache in place) plus the constant projections, never a recomputation.
// Reported: time per step, and the cached K/V bytes the attention reads per second.
#include <benchmark/benchmark.h>

#include <random>

#include "qkv/nn/multihead_attention.hpp"

namespace {

void kv_cache_step(benchmark::State& state) {
  const int64_t Nk = state.range(0), E = 512, H = 8;
  std::mt19937_64 rng(42);
  const qkv::nn::multihead_attention mha({.embed_dim = E, .num_heads = H}, rng);
  qkv::nn::kv_cache cache = mha.make_cache(1, Nk + 1);
  // Fill Nk positions with random keys and values directly (a prefill would cost O(Nk²)).
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t hd = E / H;
  qkv::tensor k({1, H, Nk, hd}), v({1, H, Nk, hd}), x({1, 1, E});
  for (qkv::tensor* t : {&k, &v, &x})
    for (float& value : t->values()) value = u(rng);
  cache.append(k, v);
  qkv::nn::mha_options options;
  options.threads = static_cast<int>(state.range(1));
  for (auto _ : state) {
    benchmark::DoNotOptimize(mha.forward_step(x, cache, options).out.data());
    state.PauseTiming();
    cache.clear();  // back to Nk cached positions: each timed step appends the (Nk+1)-th
    cache.append(k, v);
    state.ResumeTiming();
  }
  state.counters["Nk"] = static_cast<double>(Nk);
  state.counters["kv_bytes/s"] = benchmark::Counter(2.0 * double(Nk + 1) * E * sizeof(float),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(kv_cache_step)
    ->ArgNames({"Nk", "threads"})
    ->ArgsProduct({{1024, 4096, 16384}, {1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
