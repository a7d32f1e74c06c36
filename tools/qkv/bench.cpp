// `qkv bench`: the fused kernel beside the BLAS composition, the square-sgemm roof and the FMA
// peak, as a readable table or one JSON object per line (the keys are a contract,
// docs/contracts.md).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "bench/runner.hpp"
#include "bench_ring.hpp"
#include "commands.hpp"
#include "numbers.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/threads.hpp"

namespace qkv::cli {
namespace {

struct bench_args {
  bool quick = false;
  std::string format = "table", threads, shape, impl, pass = "forward", clock = "wall";
  std::optional<int> reps;         // default 5, or 3 with --quick
  bool ring = false;               // bench_ring.cpp
  bool gpt2 = false;               // the GPT-2 small rows
  std::optional<dtype> kv_dtype;   // every shape's K/V storage type (the standard set has both)
  std::optional<dtype> all_dtype;  // every shape's Q, K and V storage type (--kv-dtype over it)
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

std::vector<int> parse_threads(const std::string& text) {
  std::vector<int> threads;
  for (const std::string& t : split(text))
    threads.push_back(static_cast<int>(parse_int("--threads", t, {1, thread_limit})));
  return threads;
}

bench::bench_config make_config(const bench_args& a) {
  if (a.format != "table" && a.format != "json")
    throw error("--format: expected table or json, got '" + a.format + "'");
  bench::bench_config c;
  c.shapes = a.quick ? bench::quick_shapes() : bench::standard_shapes();
  if (!a.shape.empty()) c.shapes = {bench::parse_shape(a.shape, "--shape")};
  if (a.all_dtype)
    for (bench::bench_shape& s : c.shapes) s.q_type = *a.all_dtype;
  if (const std::optional<dtype> kv = a.kv_dtype ? a.kv_dtype : a.all_dtype) {
    for (bench::bench_shape& s : c.shapes) s.kv_type = *kv;
    // The standard set's rows that differ only in their storage type are now the same row.
    std::vector<bench::bench_shape> unique;
    for (const bench::bench_shape& s : c.shapes)
      if (std::none_of(unique.begin(), unique.end(), [&](const bench::bench_shape& u) {
            return bench::describe(u) == bench::describe(s);
          }))
        unique.push_back(s);
    c.shapes = unique;
    c.kv_step_types = {*kv};
  }
  c.mha_row = a.shape.empty() && !a.quick;  // its own shape: with the standard set only
  c.gpt2_rows = a.gpt2;
  c.threads =
      a.threads.empty()
          ? std::vector<int>{static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))}
          : parse_threads(a.threads);
  if (!a.impl.empty()) c.impls = split(a.impl);
  c.passes = a.pass == "all" ? std::vector<std::string>{"forward", "backward"}
                             : std::vector<std::string>{a.pass};
  c.plan.reps = a.reps.value_or(a.quick ? 3 : 5);
  c.plan.min_seconds = a.quick ? 0.05 : 0.5;
  if (a.clock != "wall" && a.clock != "cpu")
    throw error("--clock: expected wall or cpu, got '" + a.clock + "'");
  c.plan.clock = a.clock == "cpu" ? bench::clock_kind::cpu : bench::clock_kind::wall;
  return c;
}

// `digits` significant digits, so that the JSON stays short.
double rounded(double x, int digits = 5) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*g", digits, x);
  return std::stod(text);
}

std::string json_line(const bench::bench_row& r) {
  nlohmann::ordered_json j;
  const bench::bench_shape& s = r.shape;
  j["impl"] = r.impl;
  j["pass"] = r.pass;
  j["B"] = s.B, j["Hq"] = s.Hq, j["Hkv"] = s.Hkv, j["Nq"] = s.Nq, j["Nk"] = s.Nk;
  j["d"] = s.d, j["dv"] = s.dv;
  j["causal"] = to_string(s.causal);
  if (s.windowed()) j["window"] = {s.window_left, s.window_right};
  if (r.impl != "peak") j["kv_dtype"] = to_string(s.kv_type);
  if (r.impl != "peak" && s.q_type != dtype::f32) j["q_dtype"] = to_string(s.q_type);
  j["threads"] = r.threads;
  j["ms"] = rounded(r.ms);
  j["gflops"] = rounded(r.gflops, 4);
  j["peak_rss_mb"] = rounded(r.peak_rss_mb, 4);
  if (r.cpu_clock) j["clock"] = "cpu";
  if (!r.isa.empty()) j["isa"] = r.isa, j["fma_chains"] = r.fma_chains;
  if (r.sgemm_n) j["sgemm_n"] = r.sgemm_n, j["gemm"] = r.gemm;
  if (r.ratio_to_peak) j["ratio_to_peak"] = rounded(*r.ratio_to_peak, 3);
  if (r.ratio_to_sgemm) j["ratio_to_sgemm"] = rounded(*r.ratio_to_sgemm, 3);
  if (r.ratio_to_blas) j["ratio_to_blas"] = rounded(*r.ratio_to_blas, 3);
  if (r.bytes_per_s) {
    j["bytes_per_s"] = rounded(*r.bytes_per_s, 4);
    j["read_loop_bytes_per_s"] = rounded(*r.read_loop_bytes_per_s, 4);
    j["read_fraction"] = rounded(*r.bytes_per_s / *r.read_loop_bytes_per_s, 3);
  }
  if (r.embed_dim) j["embed_dim"] = r.embed_dim;
  if (r.projection_share) j["projection_share"] = rounded(*r.projection_share, 3);
  if (r.tokens_per_s) j["tokens_per_s"] = rounded(*r.tokens_per_s, 4);
  if (r.weight_bytes) j["weight_bytes"] = r.weight_bytes;
  return j.dump();
}

// The shape column is as wide as the run's longest shape, so that the columns after it line up
// (causal rows are the longest).
int shape_width(const bench::bench_config& c) {
  size_t width = 38;
  for (const bench::bench_shape& s : c.shapes) width = std::max(width, bench::describe(s).size());
  return static_cast<int>(width);
}

std::string table_header(int shape_width) {
  char line[256];
  std::snprintf(line, sizeof line, "%-9s %-8s %-*s %2s %10s %8s %6s %7s %7s %9s  %s", "impl",
                "pass", shape_width, "shape", "T", "ms", "GFLOP/s", "x peak", "x sgemm", "x blas",
                "peak MiB", "notes");
  return line;
}

std::string table_line(const bench::bench_row& r, int shape_width) {
  const auto ratio = [](const std::optional<double>& x) {
    char text[16] = "-";
    if (x) std::snprintf(text, sizeof text, "%.2f", *x);
    return std::string(text);
  };
  std::string notes;
  char text[160];
  if (r.sgemm_n) {
    std::snprintf(text, sizeof text, "M=N=K=%lld, %s", static_cast<long long>(r.sgemm_n),
                  r.gemm.c_str());
    notes = text;
  }
  std::string shape = bench::describe(r.shape);
  if (!r.isa.empty()) {
    std::snprintf(text, sizeof text, "FMA loop, %s, %d chains", r.isa.c_str(), r.fma_chains);
    shape = text;
  }
  if (r.bytes_per_s && r.weight_bytes) {
    std::snprintf(text, sizeof text,
                  "%.1f tokens/s, weights read at %.1f GB/s = %.2f x read loop (%.1f GB/s)",
                  *r.tokens_per_s, *r.bytes_per_s * 1e-9, *r.bytes_per_s / *r.read_loop_bytes_per_s,
                  *r.read_loop_bytes_per_s * 1e-9);
    notes = text;
  } else if (r.bytes_per_s) {
    std::snprintf(text, sizeof text, "K,V read at %.1f GB/s = %.2f x read loop (%.1f GB/s)",
                  *r.bytes_per_s * 1e-9, *r.bytes_per_s / *r.read_loop_bytes_per_s,
                  *r.read_loop_bytes_per_s * 1e-9);
    notes = text;
  }
  if (r.tokens_per_s && !r.weight_bytes) {
    std::snprintf(text, sizeof text, "%.0f tokens/s", *r.tokens_per_s);
    notes = text;
  }
  if (r.projection_share) {
    std::snprintf(text, sizeof text, "E=%lld, projections %.0f%% / attention %.0f%% of the time",
                  static_cast<long long>(r.embed_dim), 100 * *r.projection_share,
                  100 * (1 - *r.projection_share));
    notes = text;
  }
  char line[400];
  std::snprintf(line, sizeof line, "%-9s %-8s %-*s %2d %10.3f %8.1f %6s %7s %7s %9.1f  %s",
                r.impl.c_str(), r.pass.c_str(), shape_width, shape.c_str(), r.threads, r.ms,
                r.gflops, ratio(r.ratio_to_peak).c_str(), ratio(r.ratio_to_sgemm).c_str(),
                ratio(r.ratio_to_blas).c_str(), r.peak_rss_mb, notes.c_str());
  return line;
}

void run(const bench_args& a) {
  if (a.ring) return run_bench_ring({a.quick, a.format, a.shape, a.threads, a.reps});
  const bench::bench_config config = make_config(a);
  bench::validate(config);
  const bool json = a.format == "json";
  const int width = shape_width(config);
  if (!json) std::cout << table_header(width) << std::endl;
  bench::run_bench(
      config,
      [&](const bench::bench_row& r) {
        std::cout << (json ? json_line(r) : table_line(r, width)) << std::endl;
      },
      [](const std::string& note) { std::cerr << "qkv bench: note: " << note << std::endl; });
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<bench_args>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Times the fused kernel beside the BLAS composition, one square sgemm and the FMA peak");
  cmd->add_flag("--quick", a->quick, "a few small shapes, fewer repetitions (under a minute)");
  cmd->add_flag("--gpt2", a->gpt2,
                "also GPT-2 small (random weights): a generation step and a 1024-token prefill");
  cmd->add_option("--format", a->format, "table or json (one object per line)")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads,
                  "thread counts, e.g. 1,2, each in [1, " + std::to_string(thread_limit) +
                      "] (default: every core)");
  cmd->add_option("--shape", a->shape,
                  "one shape: B,Hq,Hkv,Nq,Nk,d[,dv][,causal][,window=LEFT:RIGHT]");
  cmd->add_option("--impl", a->impl,
                  "implementations among peak,sgemm,blas,fused,reference,mha "
                  "(default peak,sgemm,blas,fused,mha; the peak is measured for the ratios "
                  "either way)");
  cmd->add_option("--pass", a->pass, "forward, backward or all")->capture_default_str();
  add_dtype(cmd, "--dtype", a->all_dtype,
            "store Q, K and V of every row as f32, f16 or bf16 (rounded to nearest even)");
  add_dtype(cmd, "--kv-dtype", a->kv_dtype,
            "store K and V of every row as f32, f16 or bf16 (over --dtype; default: the standard "
            "set's f32 and "
            "bf16 rows)");
  cmd->add_option("--clock", a->clock,
                  "wall, or cpu: the process's CPU time / threads (a loaded machine; "
                  "docs/benchmarks.md)")
      ->capture_default_str();
  add_int(cmd, "--reps", a->reps, {.lo = 1},
          "timed repetitions per row after one warm-up (default 5, --quick 3; "
          "3 for rows slower than 2 s, 1 beyond 20 s)");
  cmd->add_flag("--ring", a->ring,
                "ring attention over MPI: P ranks x 1 thread vs 1 rank x P threads, MPI wait "
                "time, peak memory per rank (runs mpirun itself)");
  cmd->callback([a] { run(*a); });
}

}  // namespace qkv::cli
