// The fused backward against the reference backward with docs/contracts.md section 3's gradient
// tolerance (max|diff| <= max(1e-4·max(1, max|ref|), 2·e_naive)), on awkward shapes, every mask
// kind, GQA, fully masked rows and scores of ±1e4; its ring property (K/V in parts, global O and
// lse); and every golden sdpa_grad case through the library.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/dropout_lookup.hpp"
#include "qkv/attention.hpp"
#include "qkv/fused.hpp"
#include "support/fused_runs.hpp"
#include "support/golden.hpp"
#include "support/naive_attention.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

enum class mask_shape {
  none,
  bool_2d,           // [Nq,Nk], random, some rows fully hidden
  key_padding,       // bool [B,1,1,Nk]: the last keys of batch 0 are padding
  bool_per_head,     // [B,Hq,Nq,Nk], random
  additive_b1,       // float [B,1,Nq,Nk] with -inf entries and whole -inf rows
  additive_row_1nk,  // float [1,1,1,Nk]
};

struct bwd_case {
  std::string name;
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
  causal_mode causal = causal_mode::none;
  mask_shape mask = mask_shape::none;
  float stddev = 1.0f;   // of Q and K: scores grow as stddev² (stddev 100: scores of ±1e4)
  float dropout = 0.0f;  // attention dropout p
};

void PrintTo(const bwd_case& c, std::ostream* os) {
  *os << c.name;
}

struct inputs {
  tensor q, k, v, dout;
  sdpa_options options;
};

inputs make_inputs(const bwd_case& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  inputs in{testing::random_tensor({c.B, c.Hq, c.Nq, c.d}, rng, c.stddev),
            testing::random_tensor({c.B, c.Hkv, c.Nk, c.d}, rng, c.stddev),
            testing::random_tensor({c.B, c.Hkv, c.Nk, c.dv}, rng),
            testing::random_tensor({c.B, c.Hq, c.Nq, c.dv}, rng),
            {}};
  in.options.causal = c.causal;
  in.options.dropout_p = c.dropout;
  in.options.dropout_seed = seed;
  std::bernoulli_distribution keep(0.7);
  const float inf = std::numeric_limits<float>::infinity();
  switch (c.mask) {
    case mask_shape::none:
      break;
    case mask_shape::bool_2d: {
      bool_tensor m({c.Nq, c.Nk});
      for (uint8_t& x : m.values()) x = keep(rng);
      for (int64_t i = 0; i < c.Nq; i += 5)  // every fifth row sees no key
        for (int64_t j = 0; j < c.Nk; ++j) m.at({i, j}) = 0;
      in.options.mask.boolean = m;
      break;
    }
    case mask_shape::key_padding: {
      bool_tensor m({c.B, 1, 1, c.Nk}, 1);
      for (int64_t j = c.Nk / 2; j < c.Nk; ++j) m.at({0, 0, 0, j}) = 0;
      in.options.mask.boolean = m;
      break;
    }
    case mask_shape::bool_per_head: {
      bool_tensor m({c.B, c.Hq, c.Nq, c.Nk});
      for (uint8_t& x : m.values()) x = keep(rng);
      in.options.mask.boolean = m;
      break;
    }
    case mask_shape::additive_b1: {
      tensor m = testing::random_tensor({c.B, 1, c.Nq, c.Nk}, rng);
      for (float& x : m.values())
        if (!keep(rng)) x = -inf;
      for (int64_t j = 0; j < c.Nk; ++j) m.at({0, 0, c.Nq - 1, j}) = -inf;  // a hidden row
      in.options.mask.additive = m;
      break;
    }
    case mask_shape::additive_row_1nk:
      in.options.mask.additive = testing::random_tensor({1, 1, 1, c.Nk}, rng, 2.0f);
      break;
  }
  return in;
}

// The backward a user would write in plain fp32: its error against the reference is e_naive of
// docs/contracts.md section 3.
sdpa_gradients naive_fp32_backward(const inputs& in) {
  return testing::sdpa_backward_naive_fp32(in.q, in.k, in.v, in.dout, in.options);
}

// docs/contracts.md section 3, gradients: max|got - ref| <= max(1e-4·max(1, max|ref|), 2·e_naive).
void expect_gradients_close(const sdpa_gradients& got, const sdpa_gradients& ref,
                            const sdpa_gradients& naive, const std::string& what) {
  for (const auto& [name, x, r, n] : {std::tuple{"dQ", &got.dq, &ref.dq, &naive.dq},
                                      {"dK", &got.dk, &ref.dk, &naive.dk},
                                      {"dV", &got.dv, &ref.dv, &naive.dv}}) {
    const double e_naive = max_abs_diff(*n, *r);
    const double bound = std::max(1e-4 * std::max(1.0, max_abs(*r)), 2.0 * e_naive);
    EXPECT_LE(max_abs_diff(*x, *r), bound) << what << " " << name << ": e_naive " << e_naive;
  }
}

// Every dQ row of a query that sees no key is exactly zero (docs/contracts.md section 1).
void expect_hidden_rows_zero(const sdpa_result& fwd, const tensor& dq) {
  const int64_t rows = fwd.lse.numel(), d = dq.size(3);
  for (int64_t r = 0; r < rows; ++r) {
    if (fwd.lse[r] != -std::numeric_limits<float>::infinity()) continue;
    for (int64_t c = 0; c < d; ++c) ASSERT_EQ(dq[r * d + c], 0.0f) << "row " << r;
  }
}

class FusedBackward : public ::testing::TestWithParam<bwd_case> {};

TEST_P(FusedBackward, MatchesReferenceWithinTwiceNaiveError) {
  const bwd_case& c = GetParam();
  const inputs in = make_inputs(c, 1000 + c.Nq * 31 + c.Nk * 7 + c.d);
  sdpa_options reference = in.options, fused = in.options;
  reference.run.impl = sdpa_impl::reference;
  fused.run.impl = sdpa_impl::fused;
  const sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, reference);
  const sdpa_gradients ref = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, reference);
  const sdpa_gradients got = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, fused);
  expect_gradients_close(got, ref, naive_fp32_backward(in), c.name);
  expect_hidden_rows_zero(fwd, got.dq);
}

// Shapes: N in 1..300 crossing the 128-wide tiles, and 1025; each head dim of the issue.
std::vector<bwd_case> cases() {
  using cm = causal_mode;
  using ms = mask_shape;
  std::vector<bwd_case> v;
  const int64_t dims[] = {1, 3, 59, 64, 111, 128, 256};
  const int64_t lengths[] = {1, 2, 3, 17, 64, 97, 127, 128, 129, 200, 255, 256, 257, 300};
  int n = 0;
  for (int64_t N : lengths) {
    const int64_t d = dims[n++ % 7];
    v.push_back({"square_N" + std::to_string(N) + "_d" + std::to_string(d), 1, 2, 2, N, N, d, d});
  }
  for (int64_t d : dims)
    v.push_back({"dims_d" + std::to_string(d), 1, 1, 1, 97, 130, d, d == 1 ? 3 : d});
  v.push_back({"long_N1025_d64", 1, 1, 1, 1025, 1025, 64, 64});
  v.push_back({"long_causal_N1025_d59", 1, 1, 1, 1025, 1025, 59, 59, cm::top_left});
  v.push_back({"more_keys_q3_k300", 2, 2, 2, 3, 300, 16, 8});
  v.push_back({"more_queries_q300_k3", 1, 2, 2, 300, 3, 8, 16});
  v.push_back({"causal_top_left_q129_k200", 1, 2, 2, 129, 200, 32, 32, cm::top_left});
  v.push_back({"causal_top_left_q200_k129", 1, 2, 2, 200, 129, 32, 32, cm::top_left});
  v.push_back({"causal_bottom_right_q129_k260", 1, 2, 2, 129, 260, 32, 32, cm::bottom_right});
  v.push_back({"causal_bottom_right_q260_k129", 1, 2, 2, 260, 129, 32, 32, cm::bottom_right});
  v.push_back({"bool_2d_q97_k150", 2, 2, 2, 97, 150, 24, 24, cm::none, ms::bool_2d});
  v.push_back({"bool_2d_causal_q150_k150", 1, 2, 2, 150, 150, 24, 24, cm::top_left, ms::bool_2d});
  v.push_back({"key_padding_q60_k140", 2, 2, 2, 60, 140, 32, 16, cm::none, ms::key_padding});
  v.push_back({"bool_per_head_q70_k131", 2, 3, 3, 70, 131, 20, 20, cm::none, ms::bool_per_head});
  v.push_back({"additive_q131_k90", 2, 2, 2, 131, 90, 40, 40, cm::none, ms::additive_b1});
  v.push_back(
      {"additive_causal_br_q90_k131", 2, 2, 2, 90, 131, 40, 40, cm::bottom_right, ms::additive_b1});
  v.push_back({"additive_row_q64_k257", 1, 2, 2, 64, 257, 64, 64, cm::none, ms::additive_row_1nk});
  v.push_back({"gqa_4_2", 2, 4, 2, 100, 140, 32, 24});
  v.push_back({"mqa_6_1_causal", 1, 6, 1, 140, 140, 16, 16, cm::top_left});
  v.push_back({"gqa_key_padding", 2, 4, 1, 33, 150, 16, 16, cm::none, ms::key_padding});
  v.push_back({"scores_1e4_d64", 1, 2, 2, 65, 150, 64, 64, cm::none, ms::none, 100.0f});
  v.push_back({"scores_1e4_d8_causal", 1, 1, 1, 140, 140, 8, 8, cm::top_left, ms::none, 60.0f});
  // Attention dropout: the mask regenerated in every tile must be the reference's.
  v.push_back({"dropout_d59_q97_k130", 1, 2, 2, 97, 130, 59, 59, cm::none, ms::none, 1.0f, 0.2f});
  v.push_back({"dropout_gqa_causal_q129_k260", 2, 4, 2, 129, 260, 32, 24, cm::bottom_right,
               ms::none, 1.0f, 0.5f});
  v.push_back({"dropout_bool_2d_q150_k150", 1, 2, 2, 150, 150, 24, 24, cm::top_left, ms::bool_2d,
               1.0f, 0.1f});
  v.push_back(
      {"dropout_long_N1025_d64", 1, 1, 1, 1025, 1025, 64, 64, cm::none, ms::none, 1.0f, 0.3f});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedBackward, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(FusedBackward, EveryThreadCountAndSimdTargetAgree) {
  const bwd_case c{"threads", 2, 4, 2, 150, 300, 48, 40, causal_mode::top_left};
  const inputs in = make_inputs(c, 99);
  sdpa_options reference = in.options;
  reference.run.impl = sdpa_impl::reference;
  const sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, reference);
  const sdpa_gradients ref = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, reference);
  const sdpa_gradients naive = naive_fp32_backward(in);
  for (simd_target target : {simd_target::portable, simd_target::avx2, simd_target::avx512})
    for (int threads : {1, 2, 3, 7}) {
      if (!simd_target_available(target)) continue;
      const sdpa_gradients got =
          testing::fused_backward_on(in.q, in.k, in.v, fwd, in.dout, in.options, target, threads);
      expect_gradients_close(
          got, ref, naive, std::string(to_string(target)) + " threads " + std::to_string(threads));
    }
}

// At a fixed thread count the gradients are the same bits on every run, for any Nk, under both
// schedules of dQ: key blocks assigned statically (2 (b, kv head) pairs) and whole pairs handed
// out dynamically (8 pairs). (Under the former dynamic schedule of key blocks, 8 runs of each
// shape through `qkv sdpa --threads 2` gave 4 and 6 different dQ.)
TEST(FusedBackward, RunsAtTwoThreadsGiveIdenticalBits) {
  for (const bwd_case& c :
       {bwd_case{"blocks", 1, 2, 2, 1025, 1025, 32, 32, causal_mode::top_left},
        bwd_case{"pairs", 2, 8, 4, 130, 1025, 16, 16, causal_mode::bottom_right}}) {
    const inputs in = make_inputs(c, 7);
    sdpa_options o = in.options;
    o.run.impl = sdpa_impl::fused;
    o.run.threads = 2;
    const sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, o);
    const sdpa_gradients first = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, o);
    const auto same = [](const tensor& a, const tensor& b) {
      return std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
    };
    for (int run = 1; run < 6; ++run) {
      const sdpa_gradients again = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, o);
      EXPECT_TRUE(same(first.dq, again.dq)) << c.name << " run " << run;
      EXPECT_TRUE(same(first.dk, again.dk)) << c.name << " run " << run;
      EXPECT_TRUE(same(first.dv, again.dv)) << c.name << " run " << run;
    }
  }
}

// Keys [j0, j1) of a [B,H,N,C] tensor.
tensor key_slice(const tensor& t, int64_t j0, int64_t j1) {
  const int64_t B = t.size(0), H = t.size(1), C = t.size(3);
  tensor s({B, H, j1 - j0, C});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t c = 0; c < C; ++c) s.at({b, h, j - j0, c}) = t.at({b, h, j, c});
  return s;
}

TEST(FusedBackward, KeyBlocksWithGlobalOutAndLseSumToTheWholeGradient) {
  // Ring attention's use: K/V in two parts, each with the GLOBAL O and lse; dQ sums over the
  // parts, dK and dV are each part's rows. The softmax over a part does not sum to 1.
  const bwd_case c{"ring", 2, 4, 2, 70, 200, 24, 16};
  const inputs in = make_inputs(c, 7);
  sdpa_options reference = in.options;
  reference.run.impl = sdpa_impl::reference;
  const sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, reference);
  const sdpa_gradients ref = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, reference);
  sdpa_gradients sum{tensor(in.q.shape()), tensor(in.k.shape()), tensor(in.v.shape())};
  const int64_t split = 77;
  for (auto [j0, j1] : {std::pair<int64_t, int64_t>{0, split}, {split, c.Nk}}) {
    const tensor k = key_slice(in.k, j0, j1), v = key_slice(in.v, j0, j1);
    sdpa_options fused = in.options;
    fused.run.impl = sdpa_impl::fused;
    const sdpa_gradients part = sdpa_backward(in.q, k, v, fwd, in.dout, fused);
    for (int64_t i = 0; i < sum.dq.numel(); ++i) sum.dq[i] += part.dq[i];
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.Hkv; ++h)
        for (int64_t j = j0; j < j1; ++j) {
          for (int64_t x = 0; x < c.d; ++x) sum.dk.at({b, h, j, x}) = part.dk.at({b, h, j - j0, x});
          for (int64_t x = 0; x < c.dv; ++x)
            sum.dv.at({b, h, j, x}) = part.dv.at({b, h, j - j0, x});
        }
  }
  expect_gradients_close(sum, ref, naive_fp32_backward(in), "ring");
}

TEST(FusedBackward, RowWithMinusInfinityLseGivesZeroGradients) {
  // A key block that a row cannot see anywhere (lse = -inf from the global forward) adds
  // nothing, even though the block's own scores are finite.
  const bwd_case c{"hidden", 1, 1, 1, 4, 9, 5, 3};
  const inputs in = make_inputs(c, 3);
  sdpa_result fwd = sdpa_forward(in.q, in.k, in.v, in.options);
  for (int64_t c2 = 0; c2 < 3; ++c2) fwd.out.at({0, 0, 2, c2}) = 0.0f;
  fwd.lse.at({0, 0, 2}) = -std::numeric_limits<float>::infinity();
  fwd.row_max.at({0, 0, 2}) = -std::numeric_limits<float>::infinity();
  sdpa_options fused = in.options;
  fused.run.impl = sdpa_impl::fused;
  const sdpa_gradients g = sdpa_backward(in.q, in.k, in.v, fwd, in.dout, fused);
  expect_hidden_rows_zero(fwd, g.dq);
  for (float x : g.dk.values()) EXPECT_TRUE(std::isfinite(x));
}

class GoldenFusedBackward : public ::testing::TestWithParam<testing::golden_case> {};

TEST_P(GoldenFusedBackward, MatchesPyTorchFloat64) {
  const testing::golden_case& c = GetParam();
  sdpa_options options = c.sdpa_options_for();
  options.run.impl = sdpa_impl::fused;
  const tensor q = c.input("q"), k = c.input("k"), v = c.input("v");
  const sdpa_result fwd = sdpa_forward(q, k, v, options);
  const sdpa_gradients g = sdpa_backward(q, k, v, fwd, c.input("G"), options);
  for (const auto& [name, got] : {std::pair{"dQ", &g.dq}, {"dK", &g.dk}, {"dV", &g.dv}}) {
    const tensor expected = c.expected(std::string(name) + "_float64");
    EXPECT_LE(max_abs_diff(*got, expected), 1e-4 * std::max(1.0, max_abs(expected)))
        << c.id << " " << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenFusedBackward,
                         ::testing::ValuesIn(testing::load_golden("sdpa_grad")),
                         testing::golden_case_name);

}  // namespace
}  // namespace qkv
