// Google Benchmark suite over the standard shapes of `qkv bench` (docs/benchmarks.md): the fused
// kernel and the BLAS composition, forward, with GFLOP/s from the same formula (shapes.hpp).
// `qkv bench` is the side-by-side report; this suite suits benchmark's filters and repetitions.
#include <benchmark/benchmark.h>

#include <random>

#include "bench/composition.hpp"
#include "bench/shapes.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"

namespace {

using qkv::bench::bench_shape;

struct inputs {
  qkv::tensor q, k, v;
  explicit inputs(const bench_shape& s)
      : q({s.B, s.Hq, s.Nq, s.d}), k({s.B, s.Hkv, s.Nk, s.d}), v({s.B, s.Hkv, s.Nk, s.dv}) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (qkv::tensor* t : {&q, &k, &v})
      for (float& x : t->values()) x = u(rng);
  }
};

void set_counters(benchmark::State& state, const bench_shape& s) {
  state.counters["GFLOP/s"] = benchmark::Counter(qkv::bench::forward_flops(s) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void fused_forward(benchmark::State& state, bench_shape s) {
  const inputs in(s);
  qkv::sdpa_options options;
  options.run.impl = qkv::sdpa_impl::fused;
  options.causal = s.causal;
  options.run.threads = static_cast<int>(state.range(0));
  try {
    qkv::sdpa_forward(in.q, in.k, in.v, options);
  } catch (const qkv::error& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(qkv::sdpa_forward(in.q, in.k, in.v, options));
  set_counters(state, s);
}

void blas_forward(benchmark::State& state, bench_shape s) {
  const inputs in(s);
  qkv::bench::blas_composition composition(s, static_cast<int>(state.range(0)));
  qkv::tensor out({s.B, s.Hq, s.Nq, s.dv});
  for (auto _ : state) {
    composition.forward(in.q, in.k, in.v, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, s);
}

// Every standard shape but the long one (memory, not speed: `qkv bench` covers it), 1 and 2
// threads.
const bool registered = [] {
  for (const bench_shape& s : qkv::bench::standard_shapes()) {
    if (s.Nq * s.Nk > int64_t{8192} * 8192) continue;
    const std::string name = qkv::bench::describe(s);
    benchmark::RegisterBenchmark(("fused/" + name).c_str(), fused_forward, s)
        ->Arg(1)
        ->Arg(2)
        ->ArgName("threads")
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("blas/" + name).c_str(), blas_forward, s)
        ->Arg(1)
        ->Arg(2)
        ->ArgName("threads")
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
