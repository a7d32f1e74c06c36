// The fused forward kernel against the float64 reference on awkward shapes, every mask kind,
// GQA/MQA, fully masked rows and huge scores, on every SIMD target this CPU runs and on 1 and
// 2 threads, within docs/contracts.md section 3's fused tolerance; and against every PyTorch golden
// case.
#include "qkv/fused.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/threads.hpp"
#include "support/fused_runs.hpp"
#include "support/golden.hpp"
#include "support/naive_attention.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

constexpr float minus_inf = -std::numeric_limits<float>::infinity();

using testing::fused_forward_on;
using testing::runnable_targets;

// docs/contracts.md section 3: max|diff| <= max(2e-5·max(1, max|ref|), 2·e_naive), e_naive the
// error of the naive fp32 composition against the reference on the same inputs. `floor` = 0 drops
// the max(1, ·) floor (golden category g_tiny, outputs near 1e-30).
double fused_tolerance(const tensor& ref, const tensor& naive, double floor = 1.0) {
  return std::max(2e-5 * std::max(floor, max_abs(ref)), 2.0 * max_abs_diff(naive, ref));
}

struct fused_case {
  std::string name;
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
  causal_mode causal = causal_mode::none;
  // none | bool2d [Nq,Nk] | padding [B,1,1,Nk] | bool_rows [B,Hq,Nq,Nk] with fully hidden rows |
  // additive [B,1,Nq,Nk] with -inf | additive_big [1,1,Nq,Nk] of -1e9 | tile_hole: bool [Nq,Nk]
  // hiding keys 100..299 (whole tiles)
  std::string mask = "none";
  float stddev = 1.0f;  // of Q and K: 100 gives scores of about ±1e4
  std::optional<float> scale;
  float dropout = 0.0f;  // attention dropout p (seed from the name)
};

void PrintTo(const fused_case& c, std::ostream* os) {
  *os << c.name;
}

sdpa_options make_options(const fused_case& c, std::mt19937_64& rng) {
  sdpa_options o;
  o.scale = c.scale;
  o.causal = c.causal;
  o.dropout_p = c.dropout;
  o.dropout_seed = std::hash<std::string>{}(c.name);
  std::bernoulli_distribution keep(0.7);
  std::normal_distribution<float> normal;
  if (c.mask == "bool2d" || c.mask == "tile_hole") {
    bool_tensor m({c.Nq, c.Nk});
    for (int64_t i = 0; i < c.Nq; ++i)
      for (int64_t j = 0; j < c.Nk; ++j)
        m.at({i, j}) = c.mask == "bool2d" ? keep(rng) : (j < 100 || j >= 300);
    o.mask.boolean = m;
  } else if (c.mask == "padding") {
    bool_tensor m({c.B, 1, 1, c.Nk});
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = 0; j < c.Nk; ++j) m.at({b, 0, 0, j}) = j < c.Nk - 3 * (b + 1);
    o.mask.boolean = m;
  } else if (c.mask == "bool_rows") {
    bool_tensor m({c.B, c.Hq, c.Nq, c.Nk});
    for (int64_t x = 0; x < m.numel(); ++x) m[x] = keep(rng);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.Hq; ++h)
        for (int64_t i = (b + h) % 3; i < c.Nq; i += 3)
          for (int64_t j = 0; j < c.Nk; ++j) m.at({b, h, i, j}) = 0;
    o.mask.boolean = m;
  } else if (c.mask == "additive") {
    tensor m({c.B, 1, c.Nq, c.Nk});
    for (float& x : m.values()) x = keep(rng) ? normal(rng) : minus_inf;
    o.mask.additive = m;
  } else if (c.mask == "additive_big") {
    tensor m({1, 1, c.Nq, c.Nk});
    for (float& x : m.values()) x = keep(rng) ? 0.0f : -1e9f;
    o.mask.additive = m;
  }
  return o;
}

class FusedForward : public ::testing::TestWithParam<fused_case> {};

TEST_P(FusedForward, MatchesReferenceOnEveryTargetAndThreadCount) {
  const fused_case& c = GetParam();
  std::mt19937_64 rng(std::hash<std::string>{}(c.name));
  const tensor q = testing::random_tensor({c.B, c.Hq, c.Nq, c.d}, rng, c.stddev);
  const tensor k = testing::random_tensor({c.B, c.Hkv, c.Nk, c.d}, rng, c.stddev);
  const tensor v = testing::random_tensor({c.B, c.Hkv, c.Nk, c.dv}, rng);
  sdpa_options options = make_options(c, rng);
  options.run.impl = sdpa_impl::reference;
  const sdpa_result ref = sdpa_forward(q, k, v, options);
  const sdpa_result naive = testing::sdpa_forward_naive_fp32(q, k, v, options);
  const double tol_out = fused_tolerance(ref.out, naive.out);
  const double tol_lse = fused_tolerance(ref.lse, naive.lse);
  std::vector<sdpa_result> results;
  for (simd_target target : runnable_targets())
    for (int threads : {1, 2}) {
      const std::string where =
          std::string(to_string(target)) + ", " + std::to_string(threads) + " thread(s)";
      results.push_back(fused_forward_on(q, k, v, options, target, threads));
      const sdpa_result& got = results.back();
      EXPECT_LE(max_abs_diff(got.out, ref.out), tol_out) << where;
      EXPECT_LE(max_abs_diff(got.lse, ref.lse), tol_lse) << where;
      // Rows with no visible key: exactly O = 0 and lse = -inf (max_abs_diff only bounds them).
      for (int64_t x = 0; x < ref.lse.numel(); ++x)
        if (ref.lse[x] == minus_inf) {
          ASSERT_EQ(got.lse[x], minus_inf) << where << " row " << x;
          for (int64_t ch = 0; ch < c.dv; ++ch) ASSERT_EQ(got.out[x * c.dv + ch], 0.0f) << where;
        }
    }
  // 1 and 2 threads (and the targets) agree with each other within the same tolerance.
  for (const sdpa_result& r : results) EXPECT_LE(max_abs_diff(r.out, results[0].out), tol_out);
}

fused_case C(std::string name, int64_t B, int64_t Hq, int64_t Hkv, int64_t Nq, int64_t Nk,
             int64_t d, int64_t dv, causal_mode causal = causal_mode::none,
             std::string mask = "none", float stddev = 1.0f,
             std::optional<float> scale = std::nullopt) {
  return {std::move(name), B, Hq, Hkv, Nq, Nk, d, dv, causal, std::move(mask), stddev, scale};
}

// Attention dropout p on case c: the same shapes with O = (P ∘ M/(1-p))·V.
fused_case with_dropout(fused_case c, float p) {
  c.name += "_dropout";
  c.dropout = p;
  return c;
}

std::vector<fused_case> fused_cases() {
  using enum causal_mode;
  return {
      C("one_by_one_d1", 1, 1, 1, 1, 1, 1, 1),
      C("d3_nq17_nk33", 2, 2, 2, 17, 33, 3, 3),
      C("gqa_d59_dv111_nq97_nk130", 1, 4, 2, 97, 130, 59, 111),
      C("d64_n300_causal", 1, 2, 2, 300, 300, 64, 64, top_left),
      C("d128_nq300_nk97_bottom_right", 1, 2, 1, 300, 97, 128, 128, bottom_right),
      C("d128_nq300_nk97_top_left", 1, 1, 1, 300, 97, 128, 128, top_left),
      C("d111_nq97_nk300_bottom_right", 2, 1, 1, 97, 300, 111, 111, bottom_right),
      C("d111_nq97_nk300_top_left", 1, 2, 2, 97, 300, 111, 64, top_left),
      C("d256_nq64_nk200_scale", 1, 2, 2, 64, 200, 256, 256, none, "none", 1.0f, 0.3f),
      C("d64_n1025", 1, 1, 1, 1025, 1025, 64, 64),
      C("d64_n1025_causal", 1, 1, 1, 1025, 1025, 64, 64, top_left),
      C("mqa_nq5_nk300_bottom_right", 1, 8, 1, 5, 300, 64, 64, bottom_right),
      C("decode_mqa_split_nk3000", 1, 8, 1, 1, 3000, 128, 128),
      C("decode_split_padding", 2, 4, 2, 1, 2500, 64, 64, bottom_right, "padding"),
      C("decode_split_causal_top_left", 1, 2, 2, 2, 2000, 64, 64, top_left),
      C("bool2d", 1, 2, 2, 130, 130, 64, 64, none, "bool2d"),
      C("padding_d59", 2, 2, 1, 77, 150, 59, 59, none, "padding"),
      C("bool_rows_fully_masked", 2, 3, 3, 40, 70, 8, 8, none, "bool_rows"),
      C("bool_rows_and_causal", 1, 2, 1, 50, 260, 64, 64, top_left, "bool_rows"),
      C("additive_inf", 2, 2, 2, 33, 140, 64, 64, none, "additive"),
      C("additive_big_and_causal", 1, 2, 2, 60, 60, 64, 32, top_left, "additive_big"),
      C("tile_hole", 1, 1, 1, 20, 400, 64, 64, none, "tile_hole"),
      C("tile_hole_causal_bottom_right", 1, 1, 1, 20, 400, 32, 32, bottom_right, "tile_hole"),
      C("scores_1e4", 1, 2, 2, 130, 130, 64, 64, none, "none", 100.0f),
      C("scores_1e4_causal_mask", 1, 2, 2, 70, 300, 64, 64, bottom_right, "additive", 100.0f),
      C("dv40_not_multiple_of_16", 1, 2, 2, 50, 90, 64, 40),
      C("d1_n300", 1, 1, 1, 300, 300, 1, 1, top_left),
      with_dropout(C("d3_nq17_nk33", 2, 2, 2, 17, 33, 3, 3), 0.1f),
      with_dropout(C("gqa_d59_dv111_nq97_nk130", 1, 4, 2, 97, 130, 59, 111), 0.3f),
      with_dropout(C("d64_n1025_causal", 1, 1, 1, 1025, 1025, 64, 64, top_left), 0.2f),
      with_dropout(C("decode_split_padding", 2, 4, 2, 1, 2500, 64, 64, bottom_right, "padding"),
                   0.5f),
      with_dropout(C("bool_rows_fully_masked", 2, 3, 3, 40, 70, 8, 8, none, "bool_rows"), 0.25f),
      with_dropout(C("additive_inf", 2, 2, 2, 33, 140, 64, 64, none, "additive"), 0.9f),
      // Blocks of at most 8 rows read K and V in place (the dot-product Q·K^T kernel).
      C("in_place_rows1_d59_dv111", 2, 3, 3, 1, 300, 59, 111, none, "bool2d"),
      C("in_place_rows3_d3", 1, 3, 1, 1, 130, 3, 3, bottom_right),
      C("in_place_rows4_gqa_d111_dv40", 1, 8, 2, 1, 257, 111, 40, none, "padding"),
      C("in_place_rows4_scores_1e4", 1, 4, 1, 1, 200, 64, 64, none, "additive", 100.0f),
      C("in_place_rows6_d72", 1, 2, 1, 3, 150, 72, 72, bottom_right),
      // Groups of 2, 5, 7 and 8 rows over key counts that end inside a group of keys and a block
      // of 8 (the scores are transposed from key order into rows), odd d.
      C("in_place_rows2_d97_nk61", 1, 4, 2, 1, 61, 97, 97),
      C("in_place_rows5_d59_nk133", 1, 5, 1, 1, 133, 59, 59, none, "padding"),
      C("in_place_rows7_d97_nk1025", 1, 7, 1, 1, 1025, 97, 40, bottom_right),
      C("in_place_rows8_gqa_d59_nk77", 2, 4, 1, 2, 77, 59, 59, bottom_right),
  };
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedForward, ::testing::ValuesIn(fused_cases()),
                         [](const auto& info) { return info.param.name; });

class GoldenFused : public ::testing::TestWithParam<testing::golden_case> {};

TEST_P(GoldenFused, FusedMatchesPyTorchFloat64) {
  const testing::golden_case& c = GetParam();
  sdpa_options options = c.sdpa_options_for();
  const tensor q = c.input("q"), k = c.input("k"), v = c.input("v");
  const tensor expected = testing::nan_to_zero(c.expected("out_float64"));
  const sdpa_result naive = testing::sdpa_forward_naive_fp32(q, k, v, options);
  const double tol = fused_tolerance(expected, naive.out, c.category == "g_tiny" ? 0.0 : 1.0);
  options.run.impl = sdpa_impl::fused;
  EXPECT_LE(max_abs_diff(sdpa_forward(q, k, v, options).out, expected), tol) << "auto target";
  for (simd_target target : runnable_targets())
    EXPECT_LE(max_abs_diff(fused_forward_on(q, k, v, options, target, 1).out, expected), tol)
        << to_string(target);
  // PyTorch's own fp32 result, where fp32 rounding of the inputs decides the answer (a finite
  // -1e9 mask: -1e9 + s rounds to -1e9 and the row becomes a plain average of V).
  if (c.category == "d_fully_masked_row" && c.has_expected("out_float32")) {
    const tensor expected32 = testing::nan_to_zero(c.expected("out_float32"));
    EXPECT_LE(max_abs_diff(sdpa_forward(q, k, v, options).out, expected32),
              2e-5 * std::max(1.0, max_abs(expected32)))
        << "against out_float32";
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenFused, ::testing::ValuesIn(testing::load_golden("sdpa")),
                         testing::golden_case_name);

TEST(FusedForward, AutoPicksTheFusedKernel) {
  std::mt19937_64 rng(5);
  const tensor q = testing::random_tensor({1, 2, 59, 16}, rng);
  const tensor k = testing::random_tensor({1, 2, 97, 16}, rng);
  const tensor v = testing::random_tensor({1, 2, 97, 16}, rng);
  sdpa_options options;
  options.run.impl = sdpa_impl::auto_select;
  const sdpa_result automatic = sdpa_forward(q, k, v, options);
  options.run.impl = sdpa_impl::fused;
  EXPECT_EQ(max_abs_diff(automatic.out, sdpa_forward(q, k, v, options).out), 0.0);
  EXPECT_TRUE(simd_target_available(simd_target::portable));
}

// Calls from several threads at once, on shapes whose packed K/V buffers the kernel keeps for the
// next call (4 MiB and more): each result equals the same call's alone, bit for bit (a row's
// result does not depend on which thread computes it), whatever buffer each call was handed.
TEST(FusedForward, ConcurrentCallsEqualTheSameCallsAlone) {
  struct call {
    tensor q, k, v;
    sdpa_options options;
    tensor alone;
  };
  std::mt19937_64 rng(11);
  std::vector<call> calls;
  for (int64_t n : {2100, 3000}) {
    call c;
    c.q = testing::random_tensor({1, 4, n, 64}, rng);
    c.k = testing::random_tensor({1, 4, n, 64}, rng);
    c.v = testing::random_tensor({1, 4, n, 64}, rng);
    c.options.run = {sdpa_impl::fused, 1};
    c.options.causal = causal_mode::top_left;
    if (n == 3000) c.options.modifiers.window = attention_window{255, 0};
    c.alone = sdpa_forward(c.q, c.k, c.v, c.options).out;
    calls.push_back(std::move(c));
  }
  std::vector<double> worst(calls.size(), 0.0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < calls.size(); ++i)
    threads.emplace_back([&, i] {
      for (int repeat = 0; repeat < 4; ++repeat) {
        const call& c = calls[(i + repeat) % calls.size()];
        const tensor out = sdpa_forward(c.q, c.k, c.v, c.options).out;
        worst[i] = std::max(worst[i], max_abs_diff(out, c.alone));
      }
    });
  for (std::thread& t : threads) t.join();
  for (double w : worst) EXPECT_EQ(w, 0.0);
}

// The thread-count rule: explicit > QKV_NUM_THREADS > every core; a bad value is a clear error.
TEST(Threads, ExplicitThenEnvironmentThenAllCores) {
  const char* saved = std::getenv("QKV_NUM_THREADS");
  const std::string saved_value = saved ? saved : "";
  ::setenv("QKV_NUM_THREADS", "3", 1);
  EXPECT_EQ(resolve_thread_count(5), 5);
  EXPECT_EQ(resolve_thread_count(0), 3);
  for (const char* bad : {"0", "-2", "two", "4x", "99999999999"}) {
    ::setenv("QKV_NUM_THREADS", bad, 1);
    try {
      resolve_thread_count(0);
      ADD_FAILURE() << "QKV_NUM_THREADS=" << bad << " was accepted";
    } catch (const error& e) {
      EXPECT_NE(std::string(e.what()).find("QKV_NUM_THREADS"), std::string::npos) << e.what();
    }
  }
  ::unsetenv("QKV_NUM_THREADS");
  EXPECT_GE(resolve_thread_count(0), 1);
  EXPECT_THROW(resolve_thread_count(-1), error);
  if (saved) ::setenv("QKV_NUM_THREADS", saved_value.c_str(), 1);
}

}  // namespace
}  // namespace qkv
