// The score modifiers (sliding window, softcap, ALiBi, sinks) in the fused kernels against the
// float64 reference, forward and backward, alone and combined, on awkward shapes (1, 3, 59, 97,
// 1025; GQA; Nq != Nk; windows narrower and wider than a tile, windows that leave rows without a
// key), on every SIMD target this CPU runs and on 1 and 2 threads, within docs/contracts.md section
// 3's fused tolerance; finite differences of the reference backward with sinks and softcap; every
// golden sdpa_ext and sdpa_ext_grad case through the library with both kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/fused.hpp"
#include "support/finite_difference.hpp"
#include "support/fused_runs.hpp"
#include "support/golden.hpp"
#include "support/naive_attention.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::max_abs;
using testing::max_abs_diff;
using window = attention_window;

constexpr float minus_inf = -std::numeric_limits<float>::infinity();

struct modifier_case {
  std::string name;
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
  causal_mode causal = causal_mode::none;
  std::optional<window> win = std::nullopt;
  std::optional<float> softcap = std::nullopt;
  bool alibi = false, sinks = false, padding = false;
  float stddev = 1.0f;  // of Q and K
};

void PrintTo(const modifier_case& c, std::ostream* os) {
  *os << c.name;
}

struct inputs {
  tensor q, k, v, dout;
  sdpa_options options;
};

inputs make_inputs(const modifier_case& c) {
  std::mt19937_64 rng(std::hash<std::string>{}(c.name));
  inputs in{testing::random_tensor({c.B, c.Hq, c.Nq, c.d}, rng, c.stddev),
            testing::random_tensor({c.B, c.Hkv, c.Nk, c.d}, rng, c.stddev),
            testing::random_tensor({c.B, c.Hkv, c.Nk, c.dv}, rng),
            testing::random_tensor({c.B, c.Hq, c.Nq, c.dv}, rng),
            {}};
  sdpa_options& o = in.options;
  o.causal = c.causal;
  o.modifiers.window = c.win;
  o.modifiers.softcap = c.softcap;
  if (c.alibi) {  // BLOOM's slopes 2^(-8(h+1)/Hq)
    tensor slopes({c.Hq});
    for (int64_t h = 0; h < c.Hq; ++h) slopes[h] = std::exp2(-8.0f * float(h + 1) / float(c.Hq));
    o.modifiers.alibi_slopes = slopes;
  }
  if (c.sinks) o.modifiers.sinks = testing::random_tensor({c.Hq}, rng, 2.0f);
  if (c.padding) {  // key padding [B,1,1,Nk]: the last keys of each batch element
    bool_tensor m({c.B, 1, 1, c.Nk}, 1);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = c.Nk - 2 - b; j < c.Nk; ++j)
        if (j >= 0) m.at({b, 0, 0, j}) = 0;
    o.mask.boolean = m;
  }
  return in;
}

// docs/contracts.md section 3: max|diff| <= max(bound·max(1, max|ref|), 2·e_naive).
double tolerance(const tensor& ref, const tensor& naive, double bound) {
  return std::max(bound * std::max(1.0, max_abs(ref)), 2.0 * max_abs_diff(naive, ref));
}

class ScoreModifiers : public ::testing::TestWithParam<modifier_case> {};

TEST_P(ScoreModifiers, FusedForwardMatchesReference) {
  const modifier_case& c = GetParam();
  const inputs in = make_inputs(c);
  sdpa_options options = in.options;
  options.run.impl = sdpa_impl::reference;
  const sdpa_result ref = sdpa_forward(in.q, in.k, in.v, options);
  const sdpa_result naive = testing::sdpa_forward_naive_fp32(in.q, in.k, in.v, in.options);
  const double tol_out = tolerance(ref.out, naive.out, 2e-5);
  const double tol_lse = tolerance(ref.lse, naive.lse, 2e-5);
  for (simd_target target : testing::runnable_targets())
    for (int threads : {1, 2}) {
      const std::string where = std::string(to_string(target)) + ", " + std::to_string(threads);
      const sdpa_result got =
          testing::fused_forward_on(in.q, in.k, in.v, in.options, target, threads);
      EXPECT_LE(max_abs_diff(got.out, ref.out), tol_out) << where;
      EXPECT_LE(max_abs_diff(got.lse, ref.lse), tol_lse) << where;
      // Rows with no visible key: exactly O = 0, lse = -inf, or lse = the sink.
      for (int64_t x = 0; x < ref.lse.numel(); ++x) {
        const int64_t h = x / c.Nq % c.Hq;
        const bool empty =
            c.sinks ? ref.lse[x] == (*in.options.modifiers.sinks)[h] : ref.lse[x] == minus_inf;
        if (!empty) continue;
        ASSERT_EQ(got.lse[x], ref.lse[x]) << where << " row " << x;
        for (int64_t ch = 0; ch < c.dv; ++ch) ASSERT_EQ(got.out[x * c.dv + ch], 0.0f) << where;
      }
    }
}

TEST_P(ScoreModifiers, FusedBackwardMatchesReference) {
  const modifier_case& c = GetParam();
  const inputs in = make_inputs(c);
  sdpa_options options = in.options;
  options.run.impl = sdpa_impl::reference;
  const sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, options);
  const sdpa_gradients ref = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, options);
  const sdpa_gradients naive =
      testing::sdpa_backward_naive_fp32(in.q, in.k, in.v, in.dout, in.options);
  for (simd_target target : testing::runnable_targets())
    for (int threads : {1, 2}) {
      const std::string where = std::string(to_string(target)) + ", " + std::to_string(threads);
      const sdpa_gradients got =
          testing::fused_backward_on(in.q, in.k, in.v, fwd, in.dout, in.options, target, threads);
      EXPECT_LE(max_abs_diff(got.dq, ref.dq), tolerance(ref.dq, naive.dq, 1e-4)) << where;
      EXPECT_LE(max_abs_diff(got.dk, ref.dk), tolerance(ref.dk, naive.dk, 1e-4)) << where;
      EXPECT_LE(max_abs_diff(got.dv, ref.dv), tolerance(ref.dv, naive.dv, 1e-4)) << where;
      if (c.sinks) {
        EXPECT_LE(max_abs_diff(got.dsinks, ref.dsinks), tolerance(ref.dsinks, naive.dsinks, 1e-4))
            << where;
      }
    }
}

modifier_case M(std::string name, int64_t B, int64_t Hq, int64_t Hkv, int64_t Nq, int64_t Nk,
                int64_t d, int64_t dv) {
  return {std::move(name), B, Hq, Hkv, Nq, Nk, d, dv};
}
modifier_case with_window(modifier_case c, int64_t left, int64_t right,
                          causal_mode causal = causal_mode::none) {
  c.win = window{left, right};
  c.causal = causal;
  return c;
}

std::vector<modifier_case> cases() {
  using enum causal_mode;
  std::vector<modifier_case> v;
  // Windows alone: narrower and wider than a tile (128 keys in place; 512, or 1024 for a window
  // under 1024 keys, in blocks of more than 8 rows), one key, one-sided, rows with no key
  // (Nq > Nk puts the first rows' diagonal before key 0), in-place decode blocks.
  v.push_back(with_window(M("window_3_0_n97", 1, 2, 2, 97, 97, 59, 59), 3, 0));
  v.push_back(with_window(M("window_0_0_q97_k30_empty_rows", 1, 2, 2, 97, 30, 16, 16), 0, 0));
  v.push_back(with_window(M("window_200_5_n300", 1, 2, 1, 300, 300, 32, 24), 200, 5));
  v.push_back(with_window(M("window_left_only_q59_k300", 2, 2, 2, 59, 300, 3, 3), 40, -1));
  v.push_back(with_window(M("window_right_only_n130", 1, 1, 1, 130, 130, 64, 64), -1, 7));
  v.push_back(
      with_window(M("window_causal_tl_q3_k1025", 1, 4, 2, 3, 1025, 64, 64), 130, 2, top_left));
  v.push_back(
      with_window(M("window_causal_br_n1025", 1, 1, 1, 1025, 1025, 64, 64), 511, 0, bottom_right));
  v.push_back(with_window(M("window_decode_split_q1_k3000", 1, 8, 1, 1, 3000, 64, 64), 700, 0));
  v.push_back(with_window(M("window_causal_tl_n2100_many_tiles", 1, 1, 1, 2100, 2100, 8, 8), 300, 0,
                          top_left));
  v.push_back(with_window(M("window_wider_than_tile_n1400", 1, 1, 1, 1400, 1400, 16, 16), 1100, 3));
  v.push_back(with_window(M("window_one_row_d1", 1, 1, 1, 1, 1, 1, 1), 0, 0));
  // Softcap, ALiBi, sinks alone.
  modifier_case c = M("softcap_n97_d59", 1, 2, 2, 97, 97, 59, 59);
  c.softcap = 5.0f, c.stddev = 2.0f;
  v.push_back(c);
  c = M("alibi_q59_k130_gqa", 2, 4, 2, 59, 130, 32, 32);
  c.alibi = true;
  v.push_back(c);
  c = M("alibi_causal_br_q3_k300", 1, 8, 8, 3, 300, 16, 16);
  c.alibi = true, c.causal = bottom_right;
  v.push_back(c);
  c = M("sinks_n97", 1, 3, 1, 97, 97, 24, 40);
  c.sinks = true;
  v.push_back(c);
  c = with_window(M("sinks_empty_rows_q97_k30", 1, 2, 2, 97, 30, 8, 8), 0, 0);
  c.sinks = true;
  v.push_back(c);
  c = M("sinks_decode_split_q1_k3000", 1, 8, 1, 1, 3000, 128, 128);
  c.sinks = true;
  v.push_back(c);
  // Everything at once.
  c = with_window(M("all_gqa_q97_k130", 2, 4, 2, 97, 130, 59, 40), 60, 3, top_left);
  c.softcap = 8.0f, c.alibi = c.sinks = c.padding = true, c.stddev = 1.5f;
  v.push_back(c);
  c = with_window(M("all_decode_q1_k1025", 1, 4, 1, 1, 1025, 64, 64), 300, 0);
  c.softcap = 30.0f, c.alibi = c.sinks = true;
  v.push_back(c);
  c = with_window(M("all_q300_k97_br", 1, 2, 2, 300, 97, 16, 16), 20, 20, bottom_right);
  c.softcap = 3.0f, c.alibi = c.sinks = true;
  v.push_back(c);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, ScoreModifiers, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// Central differences of L = sum(O ∘ G) against the reference backward, sinks and softcap
// included (d sinks too).
TEST(ScoreModifiers, ReferenceBackwardMatchesFiniteDifferences) {
  modifier_case c = with_window(M("fd", 2, 2, 1, 4, 6, 3, 2), 2, 1, causal_mode::none);
  c.softcap = 1.5f, c.alibi = c.sinks = true;
  inputs in = make_inputs(c);
  in.options.run.impl = sdpa_impl::reference;
  // Inputs on a coarse grid, so that x ± h is exact in fp32.
  std::mt19937_64 rng(5);
  for (tensor* t : {&in.q, &in.k, &in.v, &in.dout})
    *t = testing::random_grid_tensor(t->shape(), rng);
  tensor sinks = testing::random_grid_tensor({c.Hq}, rng);
  in.options.modifiers.sinks = sinks;
  const auto loss = [&] {
    in.options.modifiers.sinks = sinks;
    return testing::dot(sdpa_forward(in.q, in.k, in.v, in.options).out, in.dout);
  };
  const sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, in.options);
  const sdpa_gradients g = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, in.options);
  const float h = 1.0f / 256.0f;
  EXPECT_LE(testing::max_finite_difference_error(in.q, g.dq, loss, h), 1e-4);
  EXPECT_LE(testing::max_finite_difference_error(in.k, g.dk, loss, h), 1e-4);
  EXPECT_LE(testing::max_finite_difference_error(in.v, g.dv, loss, h), 1e-4);
  EXPECT_LE(testing::max_finite_difference_error(sinks, g.dsinks, loss, h), 1e-4);
}

class GoldenScoreModifiers : public ::testing::TestWithParam<testing::golden_case> {};

// docs/contracts.md section 3 against the float64 data, for the reference and the fused kernel:
// out, lse (finite entries within the bound, the -inf pattern exact), and with gradients dQ, dK, dV
// and d sinks.
TEST_P(GoldenScoreModifiers, BothKernelsMatchFloat64) {
  const testing::golden_case& c = GetParam();
  const tensor q = c.input("q"), k = c.input("k"), v = c.input("v");
  const bool grad = c.kind == "sdpa_ext_grad";
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused}) {
    sdpa_options options = c.sdpa_options_for();
    options.run.impl = impl;
    const std::string what = impl == sdpa_impl::fused ? "fused" : "reference";
    const sdpa_result r = sdpa_forward(q, k, v, options);
    const tensor out = c.expected("out_float64"), lse = c.expected("lse_float64");
    EXPECT_LE(max_abs_diff(r.out, out), 1e-5 * std::max(1.0, max_abs(out))) << what;
    double lse_scale = 1.0, lse_diff = 0.0;
    for (int64_t x = 0; x < lse.numel(); ++x) {
      ASSERT_EQ(std::isinf(lse[x]), std::isinf(r.lse[x])) << what << " lse " << x;
      if (std::isinf(lse[x])) continue;
      lse_scale = std::max(lse_scale, double(std::fabs(lse[x])));
      lse_diff = std::max(lse_diff, double(std::fabs(lse[x] - r.lse[x])));
    }
    EXPECT_LE(lse_diff, 1e-5 * lse_scale) << what << " lse";
    if (!grad) continue;
    const sdpa_gradients g = sdpa_backward(q, k, v, r, c.input("G"), options);
    for (const auto& [name, got] : {std::pair{"dQ", &g.dq}, {"dK", &g.dk}, {"dV", &g.dv}}) {
      const tensor expected = c.expected(std::string(name) + "_float64");
      EXPECT_LE(max_abs_diff(*got, expected), 1e-4 * std::max(1.0, max_abs(expected)))
          << what << " " << name;
    }
    if (c.has_expected("dsinks_float64")) {
      const tensor expected = c.expected("dsinks_float64");
      EXPECT_LE(max_abs_diff(g.dsinks, expected), 1e-4 * std::max(1.0, max_abs(expected)))
          << what << " dsinks";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenScoreModifiers,
                         ::testing::ValuesIn(testing::load_golden({"sdpa_ext", "sdpa_ext_grad"})),
                         testing::golden_case_name);

}  // namespace
}  // namespace qkv
