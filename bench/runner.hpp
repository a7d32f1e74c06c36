// The side-by-side runner behind `qkv bench`: for each thread count, the FMA peak of every
// instruction set the CPU runs; then for each shape and pass the fused kernel, the BLAS
// composition, the square-sgemm roof and (on request) the reference kernel, one row each, every
// row with its ratio to the peak. Formatting belongs to the caller.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shapes.hpp"
#include "timing.hpp"

namespace qkv::bench {

// Implementations, in the order they run within a shape (the roofs first, for the ratios);
// "peak" rows come once per thread count before the shapes, "mha" (the multi-head attention
// layer's row) once per thread count after them.
inline const std::vector<std::string> all_impls = {"peak",  "sgemm",     "blas",
                                                   "fused", "reference", "mha"};

struct bench_config {
  std::vector<bench_shape> shapes = standard_shapes();
  std::vector<int> threads = {1};
  std::vector<std::string> impls = {"peak", "sgemm", "blas", "fused", "mha"};
  std::vector<std::string> passes = {"forward"};
  timing_plan plan;
  double max_bytes = 8.0 * (1 << 30);  // rows that would need more are skipped with a note
  bool mha_row = true;  // the MHA forward (B=1, N=1024, E=512, H=8), when "mha" is in impls
  // The cache types of the MHA layer's KV-cache step rows ("mha-kv-step"), like the shapes'.
  std::vector<dtype> kv_step_types = {dtype::f32, dtype::bf16};
  bool gpt2_rows = false;  // GPT-2 small: generation step and 1024-token prefill (gpt2_row.hpp)
};

struct bench_row {
  std::string impl, pass;
  bench_shape shape;
  int threads = 1;
  double ms = 0, gflops = 0, peak_rss_mb = 0;
  double flops = 0;                             // the attention's, or the sgemm's own 2·n^3
  int64_t sgemm_n = 0;                          // sgemm rows: the side of the square product
  std::string gemm;                             // sgemm rows: the library and kernel that ran
  std::string isa;                              // peak rows: the instruction set of the loop
  int fma_chains = 0;                           // peak rows: independent accumulators
  std::optional<double> ratio_to_peak;          // gflops / the best ISA's peak, same threads
  bool cpu_clock = false;                       // ms is CPU time / threads (timing_plan::clock)
  std::optional<double> ratio_to_sgemm;         // gflops / the sgemm roof's gflops
  std::optional<double> ratio_to_blas;          // blas ms / this row's ms (> 1: faster)
  std::optional<double> bytes_per_s;            // decode: bytes of K and V read per second
  std::optional<double> read_loop_bytes_per_s;  // decode: the read loop, same thread count
  int64_t embed_dim = 0;                        // mha: E (the shape is its attention's, d = E/H)
  std::optional<double> projection_share;       // mha: share of the time outside the attention
  std::optional<double> tokens_per_s;           // gpt2 rows: tokens per second
  int64_t weight_bytes = 0;                     // gpt2-step: fp32 weight bytes read per token
};

// Checks a config (threads >= 1, known impls and passes); throws qkv::error naming the option.
void validate(const bench_config& config);

// Runs every row, calling on_row as each finishes and on_note for skipped rows.
void run_bench(const bench_config& config, const std::function<void(const bench_row&)>& on_row,
               const std::function<void(const std::string&)>& on_note);

}  // namespace qkv::bench
