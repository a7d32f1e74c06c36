// The benchmark runner: inputs per shape, the roofs cached per thread count, one timed row per
// implementation, and the memory check that skips rows the machine cannot hold.
#include "runner.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <random>
#include <sstream>

#include "composition.hpp"
#include "gpt2_row.hpp"
#include "kv_cache_row.hpp"
#include "mha_row.hpp"
#include "peak.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/gemm.hpp"
#include "qkv/stored_tensor.hpp"
#include "roofs.hpp"

namespace qkv::bench {
namespace {

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string gib(double bytes) {
  std::ostringstream out;
  out.precision(3);
  out << bytes / double(1 << 30) << " GiB";
  return out.str();
}

tensor uniform_tensor(const shape_t& shape, std::mt19937& rng) {
  tensor t(shape);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& x : t.values()) x = u(rng);
  return t;
}

// The last-level cache's size in bytes (48 MiB when the system does not say).
double l3_bytes() {
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return l3 > 0 ? double(l3) : 48.0 * (1 << 20);
}

// Q, K, V (and dO). A decode forward gets several copies of K and V, together at least 4x the
// L3, used in turn by successive runs: otherwise a K/V of a few MiB stays cached between runs
// and the row measures the cache, not memory.
struct inputs {
  tensor q, dout;
  std::vector<tensor> k, v;                   // f32 K and V: copies of the same values
  std::vector<stored_tensor> k_half, v_half;  // K and V stored in f16 or bf16, likewise
  mutable size_t next = 0;                    // the copy the next run reads
  bool half() const { return !k_half.empty(); }
  tensor_view key() const { return half() ? tensor_view(k_half[next]) : tensor_view(k[next]); }
  tensor_view value() const { return half() ? tensor_view(v_half[next]) : tensor_view(v[next]); }
  std::optional<stored_tensor> q_half;  // Q stored in f16 or bf16
  tensor_view query() const { return q_half ? tensor_view(*q_half) : tensor_view(q); }
  void rotate() const { next = (next + 1) % (half() ? k_half.size() : k.size()); }
};

inputs make_inputs(const bench_shape& s, bool backward) {
  std::mt19937 rng(42);
  inputs in;
  in.q = uniform_tensor({s.B, s.Hq, s.Nq, s.d}, rng);
  in.k = {uniform_tensor({s.B, s.Hkv, s.Nk, s.d}, rng)};
  in.v = {uniform_tensor({s.B, s.Hkv, s.Nk, s.dv}, rng)};
  if (backward) in.dout = uniform_tensor({s.B, s.Hq, s.Nq, s.dv}, rng);
  if (s.q_type != dtype::f32) in.q_half = round_to(s.q_type, in.q);
  if (s.kv_type != dtype::f32) {
    in.k_half = {round_to(s.kv_type, in.k[0])};
    in.v_half = {round_to(s.kv_type, in.v[0])};
  }
  if (!backward && is_decode(s))
    for (double bytes = kv_bytes(s); bytes < 4.0 * l3_bytes(); bytes += kv_bytes(s)) {
      if (in.half()) {
        in.k_half.push_back(in.k_half[0]);
        in.v_half.push_back(in.v_half[0]);
      } else {
        in.k.push_back(in.k[0]);
        in.v.push_back(in.v[0]);
      }
    }
  return in;
}

// Q, K, V, O and lse; for the backward also dO, dQ, dK, dV.
// In doubles: a --shape's product may be beyond int64.
double io_bytes(const bench_shape& s, bool backward) {
  const double bq = double(s.B) * double(s.Hq) * double(s.Nq);
  const double q = bq * double(s.d), o = bq * double(s.dv + 1);
  const double kv = double(s.B) * double(s.Hkv) * double(s.Nk) * double(s.d + s.dv);
  return 4.0 * (backward ? 2.0 * (q + kv + o) : q + kv + o);
}

class runner {
 public:
  runner(const bench_config& config, const std::function<void(const bench_row&)>& on_row,
         const std::function<void(const std::string&)>& on_note)
      : config_(config), on_row_(on_row), on_note_(on_note) {}

  void run() {
    for (int T : config_.threads) {
      plan_ = config_.plan;
      plan_.threads = T;
      run_peak(T);
      for (const bench_shape& s : config_.shapes)
        for (const std::string& pass : config_.passes) run_shape(s, T, pass);
      if (config_.mha_row && contains(config_.impls, "mha") && contains(config_.passes, "forward"))
        run_mha(T);
      if (config_.mha_row && contains(config_.impls, "mha") && contains(config_.passes, "forward"))
        for (const dtype type : config_.kv_step_types)
          for (int64_t Nk : {1024, 4096, 16384}) run_kv_cache_step(Nk, T, type);
      if (config_.gpt2_rows) run_gpt2(T);
    }
  }

 private:
  void run_shape(const bench_shape& s, int T, const std::string& pass) {
    const bool backward = pass == "backward";
    // A shape whose inputs alone are beyond the limit is skipped whole (its sgemm row too),
    // before anything is allocated or its FLOPs counted.
    const bool too_large = io_bytes(s, backward) > config_.max_bytes;
    const double flops = too_large ? 0.0 : backward ? backward_flops(s) : forward_flops(s);
    const inputs in = too_large ? inputs{} : make_inputs(s, backward);
    std::optional<double> roof_gflops, blas_ms;
    for (const std::string& impl : all_impls) {
      if (impl == "mha" || impl == "peak" || !contains(config_.impls, impl)) continue;
      bench_row row;
      row.impl = impl, row.pass = pass, row.shape = s, row.threads = T, row.flops = flops;
      const double need =
          impl == "sgemm" && !too_large ? 0.0
          : impl == "blas" ? io_bytes(s, backward) + blas_composition::workspace_bytes(s, backward)
                           : io_bytes(s, backward);
      if (need > config_.max_bytes) {
        note(row,
             "skipped: would need " + gib(need) + " (more than " + gib(config_.max_bytes) + ")");
        continue;
      }
      if (impl == "sgemm") {
        measure_sgemm(row);
        roof_gflops = row.gflops;
      } else {
        malloc_trim(0);  // return freed memory, so that the high-water mark starts from use
        reset_peak_rss();
        try {
          row.ms = time_impl(impl, s, T, backward, in);
        } catch (const error& e) {
          note(row, std::string("skipped: ") + e.what());
          continue;
        }
        row.peak_rss_mb = peak_rss_mb();
        row.gflops = flops / (row.ms * 1e6);
        if (blas_ms && impl != "blas") row.ratio_to_blas = *blas_ms / row.ms;
        if (impl == "blas") blas_ms = row.ms;
        if (!backward && is_decode(s)) {
          row.bytes_per_s = kv_bytes(s) / (row.ms * 1e-3);
          // Measured next to each decode row rather than once, so that both see the same
          // machine (it is shared and noisy).
          row.read_loop_bytes_per_s = read_loop_bytes_per_s(T, plan_);
        }
      }
      if (roof_gflops) row.ratio_to_sgemm = row.gflops / *roof_gflops;
      emit(row);
    }
  }

  // The FMA peak of each instruction set on T threads, measured always (every row's ratio needs
  // it) and reported as rows when "peak" is among the impls.
  void run_peak(int T) {
    peak_gflops_ = 0;
    reset_peak_rss();
    for (const fma_peak& p : measure_fma_peaks(T, plan_)) {
      peak_gflops_ = std::max(peak_gflops_, p.gflops);
      if (!contains(config_.impls, "peak")) continue;
      bench_row row;
      row.impl = "peak", row.pass = "forward", row.threads = T;
      row.shape = {0, 0, 0, 0, 0, 0, 0, causal_mode::none};
      row.isa = p.isa, row.fma_chains = p.chains;
      row.ms = p.ms, row.flops = p.flops, row.gflops = p.gflops;
      row.peak_rss_mb = peak_rss_mb();
      peak_rows_.push_back(row);
    }
    for (bench_row& row : peak_rows_) emit(row);
    peak_rows_.clear();
  }

  void emit(bench_row& row) {
    if (peak_gflops_ > 0) row.ratio_to_peak = row.gflops / peak_gflops_;
    row.cpu_clock = plan_.clock == clock_kind::cpu;
    on_row_(row);
  }

  // B=1, N=1024, E=512, H=8 self-attention through nn::multihead_attention, fused kernel.
  void run_mha(int T) {
    constexpr int64_t B = 1, N = 1024, E = 512, H = 8;
    bench_row row;
    row.impl = "mha", row.pass = "forward", row.threads = T, row.embed_dim = E;
    row.shape = {B, H, H, N, N, E / H, E / H, causal_mode::none};
    malloc_trim(0);
    reset_peak_rss();
    mha_timing t;
    try {
      t = time_mha_forward(B, N, E, H, T, plan_);
    } catch (const std::exception& e) {  // the layer is another module's: report, go on
      note(row, std::string("skipped: ") + e.what());
      return;
    }
    row.peak_rss_mb = peak_rss_mb();
    row.ms = t.ms, row.flops = t.flops, row.gflops = t.flops / (t.ms * 1e6);
    row.projection_share = 1.0 - t.attention_ms / t.ms;
    if (contains(config_.impls, "sgemm")) {
      bench_row roof = row;
      measure_sgemm(roof);
      row.ratio_to_sgemm = row.gflops / roof.gflops;
    }
    emit(row);
  }

  // One KV-cache decoding step of the same MHA layer (B=1, E=512, H=8, projections included),
  // the cache stored as `type`: one new token attends to Nk cached positions, so the step costs
  // O(Nk·E), not a recompute.
  void run_kv_cache_step(int64_t Nk, int T, dtype type) {
    constexpr int64_t E = 512, H = 8;
    bench_row row;
    row.impl = "mha-kv-step", row.pass = "forward", row.threads = T, row.embed_dim = E;
    row.shape = {1, H, H, 1, Nk + 1, E / H, E / H, causal_mode::bottom_right};
    row.shape.kv_type = type;
    malloc_trim(0);
    reset_peak_rss();
    try {
      row.ms = time_kv_cache_step_ms(Nk, E, H, T, type, plan_);
    } catch (const std::exception& e) {
      note(row, std::string("skipped: ") + e.what());
      return;
    }
    row.peak_rss_mb = peak_rss_mb();
    // Projections of one token (q, k, v, out: 4 products of E x E) and attention over Nk+1 keys.
    row.flops = 8.0 * E * E + 4.0 * double(Nk + 1) * E;
    row.gflops = row.flops / (row.ms * 1e6);
    emit(row);
  }

  // GPT-2 small (gpt2_row.hpp): "gpt2-step", one generation step through the KV cache, with
  // the read loop's bytes/s beside it (the step reads every weight once: its memory bound), and
  // "gpt2-prefill", the forward over 1024 tokens, with the sgemm of its FLOPs as its roof.
  void run_gpt2(int T) {
    constexpr int64_t H = 12, E = 768, cached = 128, prefill = 1024;
    malloc_trim(0);
    reset_peak_rss();
    gpt2_timing t;
    try {
      t = time_gpt2_small(T, config_.plan);
    } catch (const std::exception& e) {
      bench_row row;
      row.impl = "gpt2-step", row.threads = T;
      note(row, std::string("skipped: ") + e.what());
      return;
    }
    const double rss = peak_rss_mb();
    bench_row step;
    step.impl = "gpt2-step", step.pass = "forward", step.threads = T, step.embed_dim = E;
    step.shape = {1, H, H, 1, cached + 1, E / H, E / H, causal_mode::bottom_right};
    step.ms = t.step_ms, step.flops = t.step_flops, step.gflops = t.step_flops / (t.step_ms * 1e6);
    step.peak_rss_mb = rss;
    step.tokens_per_s = 1e3 / t.step_ms;
    step.weight_bytes = t.weight_bytes;
    step.bytes_per_s = double(t.weight_bytes) / (t.step_ms * 1e-3);
    step.read_loop_bytes_per_s = read_loop_bytes_per_s(T, config_.plan);
    emit(step);
    bench_row pre = step;
    pre.impl = "gpt2-prefill";
    pre.shape = {1, H, H, prefill, prefill, E / H, E / H, causal_mode::top_left};
    pre.ms = t.prefill_ms, pre.flops = t.prefill_flops;
    pre.gflops = t.prefill_flops / (t.prefill_ms * 1e6);
    pre.tokens_per_s = double(prefill) / (t.prefill_ms * 1e-3);
    pre.weight_bytes = 0, pre.bytes_per_s.reset(), pre.read_loop_bytes_per_s.reset();
    if (contains(config_.impls, "sgemm")) {
      bench_row roof = pre;
      measure_sgemm(roof);
      pre.ratio_to_sgemm = pre.gflops / roof.gflops;
    }
    emit(pre);
  }

  void note(const bench_row& row, const std::string& text) {
    on_note_(row.impl + " " + row.pass + " " + describe(row.shape) +
             " threads=" + std::to_string(row.threads) + ": " + text);
  }

  // The square sgemm of about the row's FLOPs, measured next to the rows it is the roof of.
  void measure_sgemm(bench_row& row) {
    row.sgemm_n = sgemm_side(row.flops);
    row.gemm = gemm_description();
    malloc_trim(0);
    reset_peak_rss();
    row.ms = time_sgemm(row.sgemm_n, row.threads, plan_);
    row.peak_rss_mb = peak_rss_mb();
    row.flops = 2.0 * double(row.sgemm_n) * double(row.sgemm_n) * double(row.sgemm_n);
    row.gflops = row.flops / (row.ms * 1e6);
  }

  double time_impl(const std::string& impl, const bench_shape& s, int T, bool backward,
                   const inputs& in) {
    if (impl == "blas") {
      if (s.windowed()) throw error("the composition has no sliding window");
      if (in.half() || in.q_half) throw error("the composition reads f32 Q, K and V only");
      blas_composition c(s, T);
      tensor out({s.B, s.Hq, s.Nq, s.dv});
      if (!backward)
        return median_ms(
            [&] {
              c.forward(in.q, in.k[in.next], in.v[in.next], out);
              in.rotate();
            },
            plan_);
      const tensor &k = in.k[0], &v = in.v[0];
      tensor dq(in.q.shape()), dk(k.shape()), dv(v.shape());
      c.forward(in.q, k, v, out);
      return median_ms([&] { c.backward(in.q, k, v, in.dout, dq, dk, dv); }, plan_);
    }
    sdpa_options options;
    options.causal = s.causal;
    if (s.windowed()) options.modifiers.window = attention_window{s.window_left, s.window_right};
    options.run.impl = impl == "fused" ? sdpa_impl::fused : sdpa_impl::reference;
    options.run.threads = T;
    if (!backward)
      return median_ms(
          [&] {
            sdpa_forward(in.query(), in.key(), in.value(), options);
            in.rotate();
          },
          plan_);
    const sdpa_result forward = sdpa_forward(in.query(), in.key(), in.value(), options);
    return median_ms(
        [&] { sdpa_backward(in.query(), in.key(), in.value(), forward, in.dout, options); }, plan_);
  }

  const bench_config& config_;
  const std::function<void(const bench_row&)>& on_row_;
  const std::function<void(const std::string&)>& on_note_;
  timing_plan plan_;                  // the config's, for the current thread count
  double peak_gflops_ = 0;            // the best instruction set's, at the current thread count
  std::vector<bench_row> peak_rows_;  // emitted once every peak is known
};

}  // namespace

void validate(const bench_config& config) {
  if (config.threads.empty()) throw error("--threads: give at least one thread count");
  for (int T : config.threads)
    if (T < 1) throw error("--threads: every count must be >= 1, got " + std::to_string(T));
  for (const std::string& impl : config.impls)
    if (!contains(all_impls, impl))
      throw error("--impl: expected peak, sgemm, blas, fused, reference or mha, got '" + impl +
                  "'");
  for (const std::string& pass : config.passes)
    if (pass != "forward" && pass != "backward")
      throw error("--pass: expected forward, backward or all, got '" + pass + "'");
  if (config.plan.reps < 1)
    throw error("--reps: must be >= 1, got " + std::to_string(config.plan.reps));
}

void run_bench(const bench_config& config, const std::function<void(const bench_row&)>& on_row,
               const std::function<void(const std::string&)>& on_note) {
  validate(config);
  runner(config, on_row, on_note).run();
}

}  // namespace qkv::bench
