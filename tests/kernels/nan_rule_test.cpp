// The NaN rule (docs/attention.md) in the reference and the fused kernels, forward and backward:
// a NaN or Inf in a row's query, in a visible key's K or V, a float mask entry that is NaN or
// +inf, a non-finite modifier, or an fp32 score overflow makes that row's O and lse NaN, never
// zeros; the other rows stay finite. And additive masks of huge negative values (-1e9,
// finfo(float32).min, -3e38) and a saturating scale, where the backward must recompute P exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/fused.hpp"
#include "qkv/reference.hpp"
#include "support/fused_runs.hpp"
#include "support/golden.hpp"
#include "support/naive_attention.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::max_abs;
using testing::max_abs_diff;
using row_id = std::tuple<int64_t, int64_t, int64_t>;  // (b, h, i)

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float nan = std::numeric_limits<float>::quiet_NaN();
constexpr int64_t B = 3, H = 2, Nq = 40, Nk = 300, d = 16;

// Inputs that break the rule in known rows, bottom-right causal (row i sees keys j <= i + 260):
//   (0, 0, 3): a NaN in q;  (0, 1, i >= 10): +inf in k at key 270;
//   (1, 0, 5): a +inf mask entry;  (1, 1, 7): q·k overflows fp32 (q and key 0 times 1e20);
//   (2, 0, every row): a NaN in v at key 100, which every row sees.
struct poisoned_inputs {
  tensor q, k, v, dout;
  sdpa_options options;
  std::set<row_id> rows;
};

poisoned_inputs make_poisoned() {
  std::mt19937_64 rng(17);
  poisoned_inputs in{testing::random_tensor({B, H, Nq, d}, rng),
                     testing::random_tensor({B, H, Nk, d}, rng),
                     testing::random_tensor({B, H, Nk, d}, rng),
                     testing::random_tensor({B, H, Nq, d}, rng),
                     {},
                     {}};
  in.options.causal = causal_mode::bottom_right;
  in.q.at({0, 0, 3, 5}) = nan;
  in.rows.insert({0, 0, 3});
  in.k.at({0, 1, 270, 2}) = inf;
  for (int64_t i = 10; i < Nq; ++i) in.rows.insert({0, 1, i});
  tensor mask({B, H, Nq, Nk}, 0.0f);
  mask.at({1, 0, 5, 10}) = inf;
  in.options.mask.additive = mask;
  in.rows.insert({1, 0, 5});
  for (int64_t c = 0; c < d; ++c) {
    in.q.at({1, 1, 7, c}) = 1e20f * (c % 2 ? -1.0f : 1.0f);
    in.k.at({1, 1, 0, c}) = 1e20f * (c % 2 ? -1.0f : 1.0f);
  }
  in.rows.insert({1, 1, 7});
  in.v.at({2, 0, 100, 1}) = nan;
  for (int64_t i = 0; i < Nq; ++i) in.rows.insert({2, 0, i});
  return in;
}

// The poisoned rows are NaN in O and lse; the others finite and within the fused tolerance of
// the reference.
void expect_rule(const sdpa_result& got, const sdpa_result& ref, const std::set<row_id>& rows,
                 const std::string& what) {
  double worst = 0.0, scale = 1.0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Nq; ++i) {
        const bool poisoned = rows.count({b, h, i}) > 0;
        EXPECT_EQ(std::isnan(got.lse.at({b, h, i})), poisoned) << what << " lse " << b << h << i;
        for (int64_t c = 0; c < d; ++c) {
          const float x = got.out.at({b, h, i, c});
          ASSERT_EQ(std::isnan(x), poisoned) << what << " out " << b << " " << h << " " << i;
          if (poisoned) continue;
          ASSERT_TRUE(std::isfinite(x)) << what;
          worst = std::max(worst, double(std::fabs(x - ref.out.at({b, h, i, c}))));
          scale = std::max(scale, double(std::fabs(ref.out.at({b, h, i, c}))));
        }
      }
  EXPECT_LE(worst, 1e-4 * scale) << what;
}

TEST(NanRule, ForwardPoisonsExactlyTheRowsThatReadANonFiniteValue) {
  const poisoned_inputs in = make_poisoned();
  sdpa_options reference = in.options;
  reference.run.impl = sdpa_impl::reference;
  const sdpa_result ref = sdpa_forward(in.q, in.k, in.v, reference);
  expect_rule(ref, ref, in.rows, "reference");
  for (simd_target target : testing::runnable_targets())
    for (int threads : {1, 2})
      expect_rule(testing::fused_forward_on(in.q, in.k, in.v, in.options, target, threads), ref,
                  in.rows, std::string(to_string(target)) + " " + std::to_string(threads));
}

TEST(NanRule, DecodeKeySplitsPropagateNaN) {
  // One query row against 3000 keys: the fused forward splits the keys and merges the parts.
  std::mt19937_64 rng(3);
  tensor q = testing::random_tensor({1, 2, 1, 32}, rng),
         k = testing::random_tensor({1, 1, 3000, 32}, rng);
  const tensor v = testing::random_tensor({1, 1, 3000, 32}, rng);
  k.at({0, 0, 2500, 0}) = nan;
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused}) {
    sdpa_options o;
    o.run.impl = impl;
    o.run.threads = 2;
    const sdpa_result r = sdpa_forward(q, k, v, o);
    for (float x : r.out.values()) EXPECT_TRUE(std::isnan(x));
    for (float x : r.lse.values()) EXPECT_TRUE(std::isnan(x));
  }
}

TEST(NanRule, NonFiniteModifierValuesPoisonTheirHead) {
  // The C++ API refuses them; a kernel handed one directly follows the rule.
  std::mt19937_64 rng(5);
  const tensor q = testing::random_tensor({1, 2, 5, 8}, rng),
               k = testing::random_tensor({1, 2, 9, 8}, rng);
  const tensor v = testing::random_tensor({1, 2, 9, 8}, rng);
  const float sinks[2] = {0.5f, nan}, slopes[2] = {inf, 0.25f};
  for (int which = 0; which < 2; ++which)
    for (bool fused : {false, true}) {
      attention_params p = make_attention_params(q, k, v, {});
      sdpa_result r{tensor({1, 2, 5, 8}), tensor({1, 2, 5}), tensor({1, 2, 5}), tensor({1, 2, 5})};
      p.o = r.out.data(), p.lse = r.lse.data();
      p.row_max = r.row_max.data(), p.row_log_sum = r.row_log_sum.data();
      if (which == 0)
        p.sinks = sinks;
      else
        p.alibi_slopes = slopes;
      fused ? sdpa_forward_fused(p) : sdpa_forward_reference(p);
      const int64_t bad = which == 0 ? 1 : 0;
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < 5; ++i) {
          EXPECT_EQ(std::isnan(r.lse.at({0, h, i})), h == bad) << which << fused;
          EXPECT_EQ(std::isnan(r.out.at({0, h, i, 0})), h == bad) << which << fused;
        }
    }
}

TEST(NanRule, BackwardGivesNaNGradientsToPoisonedRows) {
  const poisoned_inputs in = make_poisoned();
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused}) {
    sdpa_options o = in.options;
    o.run.impl = impl;
    const sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, o);
    const sdpa_gradients g = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, o);
    for (const auto& [b, h, i] : in.rows)
      for (int64_t c = 0; c < d; ++c)
        EXPECT_TRUE(std::isnan(g.dq.at({b, h, i, c}))) << int(impl) << " " << b << h << i;
    // A (b, h) without any non-finite input keeps finite gradients.
    for (int64_t i = 0; i < Nq; ++i)
      for (int64_t c = 0; c < d; ++c) EXPECT_TRUE(std::isfinite(g.dq.at({2, 1, i, c})));
    for (int64_t j = 0; j < Nk; ++j)
      for (int64_t c = 0; c < d; ++c) EXPECT_TRUE(std::isfinite(g.dk.at({2, 1, j, c})));
  }
}

// Huge negative additive masks and a saturating scale: the fused forward and backward against the
// reference within docs/contracts.md section 3's fused rule (twice the naive fp32 error), on every
// target.
struct huge_case {
  std::string name;
  float fill;          // the mask value
  bool whole_rows;     // on every third row only (the others get a N(0,1) mask)
  float scale = 0.0f;  // 0: default
};

void PrintTo(const huge_case& c, std::ostream* os) {
  *os << c.name;
}

class HugeNegativeMasks : public ::testing::TestWithParam<huge_case> {};

TEST_P(HugeNegativeMasks, FusedMatchesReferenceForwardAndBackward) {
  const huge_case& c = GetParam();
  std::mt19937_64 rng(23);
  const int64_t nq = 70, nk = 150, dh = 16;
  const tensor q = testing::random_tensor({1, 2, nq, dh}, rng),
               k = testing::random_tensor({1, 2, nk, dh}, rng);
  const tensor v = testing::random_tensor({1, 2, nk, dh}, rng),
               dout = testing::random_tensor({1, 2, nq, dh}, rng);
  sdpa_options o;
  tensor mask = testing::random_tensor({nq, nk}, rng);
  for (int64_t i = 0; i < nq; ++i)
    if (!c.whole_rows || i % 3 == 0)
      for (int64_t j = 0; j < nk; ++j) mask.at({i, j}) = c.fill;
  if (c.fill != 0.0f) o.mask.additive = mask;
  if (c.scale != 0.0f) o.scale = c.scale;
  sdpa_options reference = o, fused = o;
  reference.run.impl = sdpa_impl::reference;
  fused.run.impl = sdpa_impl::fused;
  const sdpa_result ref = sdpa_forward(q, k, v, reference);
  const sdpa_result naive = testing::sdpa_forward_naive_fp32(q, k, v, o);
  const sdpa_gradients ref_g = sdpa_backward(q, k, v, ref, dout, reference);
  const sdpa_gradients naive_g = testing::sdpa_backward_naive_fp32(q, k, v, dout, o);
  const auto bound = [](const tensor& r, const tensor& n, double b) {
    return std::max(b * std::max(1.0, max_abs(r)), 2.0 * max_abs_diff(n, r));
  };
  const sdpa_result got = sdpa_forward(q, k, v, fused);
  EXPECT_LE(max_abs_diff(got.out, ref.out), bound(ref.out, naive.out, 2e-5));
  // The backward from the fused forward's own statistics, as a user runs it.
  const sdpa_gradients g = sdpa_backward(q, k, v, got, dout, fused);
  EXPECT_LE(max_abs_diff(g.dq, ref_g.dq), bound(ref_g.dq, naive_g.dq, 1e-4)) << "dQ";
  EXPECT_LE(max_abs_diff(g.dk, ref_g.dk), bound(ref_g.dk, naive_g.dk, 1e-4)) << "dK";
  EXPECT_LE(max_abs_diff(g.dv, ref_g.dv), bound(ref_g.dv, naive_g.dv, 1e-4)) << "dV";
  // Where fp32 rounding decides (the mask swallows the scores), the fused result is the
  // fp32 answer: a plain average of V, whose gradients the naive fp32 backward gives.
  if (c.fill != 0.0f && !c.whole_rows) {
    EXPECT_LE(max_abs_diff(got.out, naive.out), 1e-5 * std::max(1.0, max_abs(naive.out)));
    EXPECT_LE(max_abs_diff(g.dv, naive_g.dv), 1e-4 * std::max(1.0, max_abs(naive_g.dv)));
    EXPECT_LE(max_abs_diff(g.dk, naive_g.dk), 1e-4 * std::max(1.0, max_abs(naive_g.dk)));
  }
}

INSTANTIATE_TEST_SUITE_P(Masks, HugeNegativeMasks,
                         ::testing::Values(huge_case{"minus_1e9_everywhere", -1e9f, false},
                                           huge_case{"minus_1e9_rows", -1e9f, true},
                                           huge_case{"float32_min_everywhere",
                                                     std::numeric_limits<float>::lowest(), false},
                                           huge_case{"float32_min_rows",
                                                     std::numeric_limits<float>::lowest(), true},
                                           huge_case{"minus_3e38_everywhere", -3e38f, false},
                                           huge_case{"minus_3e38_rows", -3e38f, true},
                                           huge_case{"scale_1e30", 0.0f, false, 1e30f}),
                         [](const auto& info) { return info.param.name; });

TEST(HugeNegativeMasks, SaturatedSoftmaxHasZeroKeyGradients) {
  // scale 1e30: every row is one-hot; the exact dK is 0 (float64 gives 0, not 1e23).
  std::mt19937_64 rng(29);
  const tensor q = testing::random_tensor({1, 2, 70, 16}, rng),
               k = testing::random_tensor({1, 2, 150, 16}, rng);
  const tensor v = testing::random_tensor({1, 2, 150, 16}, rng),
               dout = testing::random_tensor({1, 2, 70, 16}, rng);
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused}) {
    sdpa_options o;
    o.scale = 1e30f;
    o.run.impl = impl;
    const sdpa_result fwd = sdpa_forward(q, k, v, o);
    const sdpa_gradients g = sdpa_backward(q, k, v, fwd, dout, o);
    EXPECT_LE(max_abs(g.dk), 1e-4) << int(impl);
    EXPECT_LE(max_abs(g.dq), 1e-4) << int(impl);
  }
}

}  // namespace
}  // namespace qkv
