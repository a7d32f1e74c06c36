// The fused kernels on inputs stored as f16 and bf16 (K and V, or Q, K and V): against the
// float64 reference computed by the library's reference kernel on the same rounded storage, under
// docs/contracts.md section 3's fused rule with e_naive the error of a naive fp32 composition on
// the rounded inputs (the rounding is part of the input; the kernel adds no error beyond fp32
// accumulation). Random shapes on every SIMD target and 1 and 2 threads, forward and backward;
// every golden sdpa, sdpa_grad, sdpa_ext and sdpa_ext_grad case.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/fused.hpp"
#include "qkv/stored_tensor.hpp"
#include "support/fused_runs.hpp"
#include "support/golden.hpp"
#include "support/naive_attention.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

// max(base·max(1, max|ref|), 2·e_naive); floor 0 drops the max(1, ·) (golden category g_tiny).
double fused_tolerance(const tensor& ref, const tensor& naive, double base, double floor = 1.0) {
  return std::max(base * std::max(floor, max_abs(ref)), 2.0 * max_abs_diff(naive, ref));
}

// Q, K and V in storage: K and V rounded to `type`, Q too when `all` (--dtype), else f32.
struct stored_inputs {
  stored_tensor q, k, v;
  tensor qw, kw, vw;  // the same values widened to f32 (for the naive composition)
  stored_inputs(const tensor& q0, const tensor& k0, const tensor& v0, dtype type, bool all)
      : q(round_to(all ? type : dtype::f32, q0)),
        k(round_to(type, k0)),
        v(round_to(type, v0)),
        qw(q.to_tensor()),
        kw(k.to_tensor()),
        vw(v.to_tensor()) {}
};

const dtype half_types[] = {dtype::f16, dtype::bf16};

std::string describe(dtype type, bool all) {
  return std::string(all ? "q, k, v " : "k, v ") + to_string(type);
}

struct storage_case {
  std::string name;
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
  causal_mode causal = causal_mode::none;
  bool modifiers = false;  // a window, a softcap, ALiBi and sinks
};

void PrintTo(const storage_case& c, std::ostream* os) {
  *os << c.name;
}

sdpa_options options_for(const storage_case& c, std::mt19937_64& rng) {
  sdpa_options o;
  o.causal = c.causal;
  if (c.modifiers) {
    o.modifiers.window = attention_window{40, 3};
    o.modifiers.softcap = 20.0f;
    o.modifiers.alibi_slopes = testing::random_tensor({c.Hq}, rng, 0.05f);
    o.modifiers.sinks = testing::random_tensor({c.Hq}, rng);
  }
  return o;
}

class FusedStorage : public ::testing::TestWithParam<storage_case> {};

TEST_P(FusedStorage, MatchesTheReferenceOnTheRoundedInputs) {
  const storage_case& c = GetParam();
  std::mt19937_64 rng(std::hash<std::string>{}(c.name));
  const testing::attention_inputs in = testing::random_attention_inputs(c, rng);
  sdpa_options options = options_for(c, rng);
  const bool backward = c.Nq * c.Nk <= 300 * 300;  // the float64 backward of 1025^2 is slow
  for (dtype type : half_types)
    for (bool all : {false, true}) {
      const stored_inputs s(in.q, in.k, in.v, type, all);
      options.run.impl = sdpa_impl::reference;
      const sdpa_result ref = sdpa_forward(s.q, s.k, s.v, options);
      const sdpa_result naive = testing::sdpa_forward_naive_fp32(s.qw, s.kw, s.vw, options);
      const double tol_out = fused_tolerance(ref.out, naive.out, 2e-5);
      const double tol_lse = fused_tolerance(ref.lse, naive.lse, 2e-5);
      std::optional<sdpa_gradients> dref, dnaive;
      if (backward) {
        dref = sdpa_backward(s.q, s.k, s.v, ref, in.g, options);
        dnaive = testing::sdpa_backward_naive_fp32(s.qw, s.kw, s.vw, in.g, options);
      }
      for (simd_target target : testing::runnable_targets())
        for (int threads : {1, 2}) {
          const std::string where = describe(type, all) + ", " + to_string(target) + ", " +
                                    std::to_string(threads) + " thread(s)";
          const sdpa_result got =
              testing::fused_forward_on(s.q, s.k, s.v, options, target, threads);
          EXPECT_LE(max_abs_diff(got.out, ref.out), tol_out) << where;
          EXPECT_LE(max_abs_diff(got.lse, ref.lse), tol_lse) << where;
          if (!backward) continue;
          const sdpa_gradients g =
              testing::fused_backward_on(s.q, s.k, s.v, got, in.g, options, target, threads);
          for (const auto& [name, mine, want, plain] :
               {std::tuple{"dq", &g.dq, &dref->dq, &dnaive->dq},
                std::tuple{"dk", &g.dk, &dref->dk, &dnaive->dk},
                std::tuple{"dv", &g.dv, &dref->dv, &dnaive->dv}})
            EXPECT_LE(max_abs_diff(*mine, *want), fused_tolerance(*want, *plain, 1e-4))
                << where << " " << name;
        }
    }
}

storage_case S(std::string name, int64_t B, int64_t Hq, int64_t Hkv, int64_t Nq, int64_t Nk,
               int64_t d, int64_t dv, causal_mode causal = causal_mode::none,
               bool modifiers = false) {
  return {std::move(name), B, Hq, Hkv, Nq, Nk, d, dv, causal, modifiers};
}

std::vector<storage_case> storage_cases() {
  using enum causal_mode;
  return {
      S("one_by_one_d1", 1, 1, 1, 1, 1, 1, 1),
      S("d3_nq17_nk33", 2, 2, 2, 17, 33, 3, 3),
      S("gqa_d59_dv111_nq97_nk130", 1, 4, 2, 97, 130, 59, 111),
      S("d128_nq300_nk97_bottom_right", 1, 2, 1, 300, 97, 128, 128, bottom_right),
      S("d64_n1025_causal", 1, 1, 1, 1025, 1025, 64, 64, top_left),
      S("modifiers_gqa_nq97_nk300", 1, 4, 1, 97, 300, 64, 64, bottom_right, true),
      // Blocks of at most 8 rows read K and V in place; decode splits its keys over threads.
      S("in_place_rows3_d3", 1, 3, 1, 1, 130, 3, 3, bottom_right),
      S("in_place_rows4_gqa_d111_dv40", 1, 8, 2, 1, 257, 111, 40),
      S("in_place_modifiers_d59", 2, 2, 1, 3, 150, 59, 59, bottom_right, true),
      S("decode_mqa_split_nk3000", 1, 8, 1, 1, 3000, 128, 128),
      // Query groups of 1 to 8 rows over odd key counts (partial tiles, prefetches past the end).
      S("in_place_group1_nk1025_d33", 2, 2, 2, 1, 1025, 33, 33),
      S("in_place_group2_nk59_d72", 1, 4, 2, 1, 59, 72, 72),
      S("in_place_group5_nk97_d128", 1, 5, 1, 1, 97, 128, 128),
      S("in_place_group6_nk3", 1, 6, 1, 1, 3, 64, 64),
      S("in_place_group7_nk1025_dv72", 1, 7, 1, 1, 1025, 128, 72),
      S("in_place_group8_nk1_d16", 1, 8, 1, 1, 1, 16, 16),
  };
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedStorage, ::testing::ValuesIn(storage_cases()),
                         [](const auto& info) { return info.param.name; });

class GoldenStorage : public ::testing::TestWithParam<testing::golden_case> {};

// Every golden case with K and V (and Q, K and V) rounded to each type: the fused kernel (auto)
// against the reference kernel on the same storage.
TEST_P(GoldenStorage, FusedMatchesTheReferenceOnTheRoundedInputs) {
  const testing::golden_case& c = GetParam();
  const tensor q = c.input("q"), k = c.input("k"), v = c.input("v");
  const bool grad = c.has_input("G");
  const double floor = c.category == "g_tiny" ? 0.0 : 1.0;
  for (dtype type : half_types)
    for (bool all : {false, true}) {
      const std::string where = describe(type, all);
      const stored_inputs s(q, k, v, type, all);
      sdpa_options options = c.sdpa_options_for();
      options.run.impl = sdpa_impl::reference;
      const sdpa_result ref = sdpa_forward(s.q, s.k, s.v, options);
      const sdpa_result naive = testing::sdpa_forward_naive_fp32(s.qw, s.kw, s.vw, options);
      sdpa_options fused = options;
      fused.run.impl = sdpa_impl::auto_select;
      const sdpa_result got = sdpa_forward(s.q, s.k, s.v, fused);
      EXPECT_LE(max_abs_diff(got.out, ref.out), fused_tolerance(ref.out, naive.out, 2e-5, floor))
          << where;
      EXPECT_LE(max_abs_diff(got.lse, ref.lse), fused_tolerance(ref.lse, naive.lse, 2e-5, floor))
          << where << " lse";
      if (!grad) continue;
      const tensor G = c.input("G");
      const sdpa_gradients dref = sdpa_backward(s.q, s.k, s.v, ref, G, options);
      const sdpa_gradients dnaive = testing::sdpa_backward_naive_fp32(s.qw, s.kw, s.vw, G, options);
      const sdpa_gradients g = sdpa_backward(s.q, s.k, s.v, got, G, fused);
      for (const auto& [name, mine, want, plain] : {std::tuple{"dq", &g.dq, &dref.dq, &dnaive.dq},
                                                    std::tuple{"dk", &g.dk, &dref.dk, &dnaive.dk},
                                                    std::tuple{"dv", &g.dv, &dref.dv, &dnaive.dv}})
        EXPECT_LE(max_abs_diff(*mine, *want), fused_tolerance(*want, *plain, 1e-4, floor))
            << where << " " << name;
    }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenStorage,
                         ::testing::ValuesIn(testing::load_golden({"sdpa", "sdpa_grad", "sdpa_ext",
                                                                   "sdpa_ext_grad"})),
                         testing::golden_case_name);

}  // namespace
}  // namespace qkv
