// One KV-cache decoding step of nn::multihead_attention (B=1, E=512, H=8, one new token) with
// Nk = 1024, 4096, 16384 positions cached: its cost should grow as O(Nk·d) (the attention reads
// the cache in place) plus the constant projections, never a recomputation.
#include <benchmark/benchmark.h>

#include "bench/kv_cache_row.hpp"

namespace {

void kv_cache_step(benchmark::State& state) {
  qkv::bench::kv_cache_step step(state.range(0), 512, 8, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    step.run();
    step.rewind();
  }
  state.counters["kv_bytes/s"] =
      benchmark::Counter(step.kv_bytes(), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(kv_cache_step)
    ->ArgNames({"Nk", "threads"})
    ->ArgsProduct({{1024, 4096, 16384}, {1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
