// The logsumexp merge on its own: attention over disjoint key ranges, merged in any order, equals
// attention over all the keys; partials with no visible key merge without NaN; huge row maxima
// keep their log sums; sinks count once; NaN propagates.
#include "qkv/merge.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "qkv/attention.hpp"
#include "qkv/reference.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

partial_result_ref view(sdpa_result& r) {
  const int64_t H = r.out.size(1), N = r.out.size(2), dv = r.out.size(3);
  return {r.out.data(),
          r.row_max.data(),
          r.row_log_sum.data(),
          {H * N * dv, N * dv, dv, 1},
          {H * N, N, 1}};
}

sdpa_result empty_result(int64_t B, int64_t H, int64_t N, int64_t dv) {
  return {tensor({B, H, N, dv}), tensor({B, H, N}, minus_infinity),
          tensor({B, H, N}, minus_infinity), tensor({B, H, N}, minus_infinity)};
}

// lse = m + log l of a merged result.
tensor lse_of(const sdpa_result& r) {
  tensor lse(r.row_max.shape());
  for (int64_t x = 0; x < lse.numel(); ++x) lse[x] = r.row_max[x] + r.row_log_sum[x];
  return lse;
}

// The reference over keys [first, first + count) only (pointer offsets into K and V).
sdpa_result attend_to_keys(const attention_params& all, int64_t first, int64_t count) {
  attention_params p = all;
  p.k = static_cast<const float*>(p.k) + first * p.k_stride[2];
  p.v = static_cast<const float*>(p.v) + first * p.v_stride[2];
  p.Nk = count;
  if (p.mask.kind != mask_kind::none)
    p.mask.data = static_cast<const float*>(p.mask.data) + first * p.mask.stride[3];
  sdpa_result r = empty_result(p.B, p.Hq, p.Nq, p.dv);
  p.o = r.out.data();
  p.lse = r.lse.data();
  p.row_max = r.row_max.data();
  p.row_log_sum = r.row_log_sum.data();
  sdpa_forward_reference(p);
  return r;
}

TEST(Merge, DisjointKeyRangesInAnyOrderEqualAllKeys) {
  std::mt19937_64 rng(3);
  const int64_t B = 2, H = 3, N = 7, Nk = 23, d = 5, dv = 6;
  const tensor q = testing::random_tensor({B, H, N, d}, rng, 2.0f);
  const tensor k = testing::random_tensor({B, H, Nk, d}, rng, 2.0f);
  const tensor v = testing::random_tensor({B, H, Nk, dv}, rng);
  // Batch 1 hides keys 0..9: row blocks of it see no key in the first range (lse = -inf).
  tensor bias({B, 1, 1, Nk});
  for (int64_t j = 0; j < 10; ++j) bias.at({1, 0, 0, j}) = minus_infinity;
  sdpa_options options;
  options.mask.additive = bias;
  options.run.impl = sdpa_impl::reference;
  const sdpa_result whole = sdpa_forward(q, k, v, options);

  const attention_params p = make_attention_params(q, k, v, options);
  const int64_t cuts[][2] = {{0, 10}, {10, 4}, {14, 9}};
  std::vector<int> order = {0, 1, 2};
  do {
    sdpa_result acc = empty_result(B, H, N, dv);
    for (int part : order) {
      sdpa_result r = attend_to_keys(p, cuts[part][0], cuts[part][1]);
      merge_partial(view(acc), view(r), B, H, N, dv);
    }
    const double tol = 2e-5 * std::max(1.0, testing::max_abs(whole.out));
    EXPECT_LE(testing::max_abs_diff(acc.out, whole.out), tol);
    EXPECT_LE(testing::max_abs_diff(lse_of(acc), whole.lse),
              2e-5 * std::max(1.0, testing::max_abs(whole.lse)));
  } while (std::next_permutation(order.begin(), order.end()));
}

TEST(Merge, PartialsWithoutVisibleKeysGiveZeroNotNaN) {
  const int64_t B = 1, H = 1, N = 2, dv = 3;
  sdpa_result acc = empty_result(B, H, N, dv), none = empty_result(B, H, N, dv);
  merge_partial(view(acc), view(none), B, H, N, dv);  // -inf with -inf
  for (float x : acc.out.values()) EXPECT_EQ(x, 0.0f);
  const tensor lse = lse_of(acc);
  for (float x : lse.values()) EXPECT_EQ(x, minus_infinity);

  sdpa_result some = empty_result(B, H, N, dv);
  some.row_max[0] = 1.5f, some.row_log_sum[0] = 0.0f;  // row 0 saw keys, row 1 none
  for (int64_t c = 0; c < dv; ++c) some.out.at({0, 0, 0, c}) = static_cast<float>(c + 1);
  merge_partial(view(acc), view(some), B, H, N, dv);
  merge_partial(view(acc), view(none), B, H, N, dv);
  EXPECT_EQ(lse_of(acc)[0], 1.5f);
  EXPECT_EQ(lse_of(acc)[1], minus_infinity);
  for (int64_t c = 0; c < dv; ++c) {
    EXPECT_EQ(acc.out.at({0, 0, 0, c}), static_cast<float>(c + 1));
    EXPECT_EQ(acc.out.at({0, 0, 1, c}), 0.0f);
  }
}

TEST(Merge, LargeLogitsDoNotOverflow) {
  // Two partials with lse 1e4 apart: weights exp(0) and exp(-1e4), never exp(+1e4).
  sdpa_result a = empty_result(1, 1, 1, 1), b = empty_result(1, 1, 1, 1);
  a.row_max[0] = 1e4f, a.row_log_sum[0] = 0.0f, a.out[0] = 2.0f;
  b.row_max[0] = 0.0f, b.row_log_sum[0] = 0.0f, b.out[0] = -7.0f;
  merge_partial(view(b), view(a), 1, 1, 1, 1);
  EXPECT_EQ(lse_of(b)[0], 1e4f);
  EXPECT_EQ(b.out[0], 2.0f);
}

TEST(Merge, HugeMaximaKeepTheirLogSums) {
  // Two halves of a row under a -1e9 mask: m = -1e9 on both sides, log l = log 3 and log 1.
  // In fp32, lse = m + log l would be -1e9 for both (an ulp of 1e9 is 64), weighting them 1:1;
  // the statistics weight them 3:1, as they should.
  sdpa_result a = empty_result(1, 1, 1, 1), b = empty_result(1, 1, 1, 1);
  a.row_max[0] = -1e9f, a.row_log_sum[0] = std::log(3.0f), a.out[0] = 1.0f;
  b.row_max[0] = -1e9f, b.row_log_sum[0] = 0.0f, b.out[0] = 5.0f;
  merge_partial(view(a), view(b), 1, 1, 1, 1);
  EXPECT_FLOAT_EQ(a.out[0], 0.75f * 1.0f + 0.25f * 5.0f);
  EXPECT_EQ(a.row_max[0], -1e9f);
  EXPECT_FLOAT_EQ(a.row_log_sum[0], std::log(4.0f));
}

TEST(Merge, SinksCountOnceAndNaNPropagates) {
  // A sink of logit 0 beside one key of score 0: the weight halves; an empty row gets lse = sink.
  sdpa_result acc = empty_result(1, 1, 2, 1);
  acc.row_max[0] = 0.0f, acc.row_log_sum[0] = 0.0f, acc.out[0] = 4.0f;
  const float sinks[1] = {0.0f};
  merge_sinks(view(acc), sinks, 1, 1, 2, 1);
  EXPECT_FLOAT_EQ(acc.out[0], 2.0f);
  EXPECT_FLOAT_EQ(lse_of(acc)[0], std::log(2.0f));
  EXPECT_EQ(acc.out[1], 0.0f);
  EXPECT_EQ(lse_of(acc)[1], 0.0f);

  sdpa_result nan = empty_result(1, 1, 2, 1);
  nan.row_max[0] = nan.row_log_sum[0] = std::nanf("");
  merge_partial(view(acc), view(nan), 1, 1, 2, 1);
  EXPECT_TRUE(std::isnan(acc.out[0]));
  EXPECT_TRUE(std::isnan(lse_of(acc)[0]));
  EXPECT_FALSE(std::isnan(acc.out[1]));
}

}  // namespace
}  // namespace qkv
