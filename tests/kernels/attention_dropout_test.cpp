// Attention dropout (dropout_lookup.hpp): the mask the fused kernels regenerate keeps 1 - p of
// the scores and scales them by 1/(1-p); p = 0 is exactly no dropout; a seed reproduces its
// mask and another seed gives another; bad p is an error naming dropout_p. (Fused against the
// reference with dropout: fused_forward_test.cpp, fused_backward_test.cpp; finite differences:
// reference_test.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "kernels/dropout_lookup.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

bool same_bits(const tensor& a, const tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

// Q = 0 makes every weight P_ij = 1/Nk, and V = the Nk x Nk identity makes O_ij = Z_ij: the
// fused forward's output is its dropout mask, M_ij/((1-p)·Nk).
tensor fused_dropout_mask(int64_t H, int64_t Nq, int64_t Nk, float p, uint64_t seed) {
  const tensor q({1, H, Nq, 8}, 0.0f), k({1, H, Nk, 8}, 0.5f);
  tensor v({1, H, Nk, Nk}, 0.0f);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t j = 0; j < Nk; ++j) v.at({0, h, j, j}) = 1.0f;
  sdpa_options o;
  o.run.impl = sdpa_impl::fused;
  o.dropout_p = p;
  o.dropout_seed = seed;
  return sdpa_forward(q, k, v, o).out;
}

TEST(AttentionDropout, FusedKeepsOneMinusPOfTheWeightsScaledByItsInverse) {
  const int64_t H = 4, Nq = 64, Nk = 256;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    const tensor z = fused_dropout_mask(H, Nq, Nk, p, 2024);
    const double kept_value = 1.0 / ((1.0 - p) * Nk);
    int64_t kept = 0;
    for (float x : z.values()) {
      if (x == 0.0f) continue;
      ++kept;
      ASSERT_NEAR(x, kept_value, 1e-6 * kept_value) << "p " << p;
    }
    // A binomial count: within 5 standard deviations of n(1-p).
    const double n = static_cast<double>(z.numel());
    const double sigma = std::sqrt(n * p * (1.0 - p));
    EXPECT_NEAR(static_cast<double>(kept), n * (1.0 - p), 5.0 * sigma) << "p " << p;
  }
}

TEST(AttentionDropout, MaskIsAPureFunctionOfSeedAndPosition) {
  const float p = 0.3f;
  const tensor a = fused_dropout_mask(2, 17, 130, p, 5), b = fused_dropout_mask(2, 17, 130, p, 5);
  const tensor other = fused_dropout_mask(2, 17, 130, p, 6);
  EXPECT_TRUE(same_bits(a, b));
  EXPECT_FALSE(same_bits(a, other));
  // The fused kernel drops exactly the scores the lookup names.
  const uint64_t threshold = detail::dropout_threshold(p);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 17; ++i) {
      const uint64_t key = detail::dropout_row_key(5, 0, h, i);
      for (int64_t j = 0; j < 130; ++j)
        ASSERT_EQ(a.at({0, h, i, j}) != 0.0f, detail::dropout_keeps(key, j, threshold))
            << h << " " << i << " " << j;
    }
}

TEST(AttentionDropout, ZeroPIsBitIdenticalToNoDropout) {
  std::mt19937_64 rng(31);
  const tensor q = testing::random_tensor({2, 4, 97, 59}, rng);
  const tensor k = testing::random_tensor({2, 2, 130, 59}, rng);
  const tensor v = testing::random_tensor({2, 2, 130, 40}, rng);
  const tensor g = testing::random_tensor({2, 4, 97, 40}, rng);
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused}) {
    sdpa_options plain, zero;
    plain.run.impl = zero.run.impl = impl;
    plain.causal = zero.causal = causal_mode::top_left;
    zero.dropout_p = 0.0f;
    zero.dropout_seed = 12345;
    const sdpa_result a = sdpa_forward(q, k, v, plain), b = sdpa_forward(q, k, v, zero);
    EXPECT_TRUE(same_bits(a.out, b.out));
    EXPECT_TRUE(same_bits(a.lse, b.lse));
    const sdpa_gradients da = sdpa_backward(q, k, v, a, g, plain);
    const sdpa_gradients db = sdpa_backward(q, k, v, b, g, zero);
    EXPECT_TRUE(same_bits(da.dq, db.dq) && same_bits(da.dk, db.dk) && same_bits(da.dv, db.dv));
  }
}

TEST(AttentionDropout, LseIsThatOfTheUndroppedScores) {
  std::mt19937_64 rng(8);
  const tensor q = testing::random_tensor({1, 2, 33, 16}, rng);
  const tensor k = testing::random_tensor({1, 2, 70, 16}, rng);
  const tensor v = testing::random_tensor({1, 2, 70, 16}, rng);
  sdpa_options plain, dropped;
  plain.run.impl = dropped.run.impl = sdpa_impl::reference;
  dropped.dropout_p = 0.4f;
  const sdpa_result a = sdpa_forward(q, k, v, plain), b = sdpa_forward(q, k, v, dropped);
  EXPECT_TRUE(same_bits(a.lse, b.lse));
  EXPECT_GT(testing::max_abs_diff(a.out, b.out), 1e-3);
}

TEST(AttentionDropout, POutsideZeroToOneIsAnErrorNamingIt) {
  const tensor q({1, 1, 2, 4}, 1.0f), k({1, 1, 3, 4}, 1.0f), v({1, 1, 3, 4}, 1.0f);
  for (float p : {-0.1f, 1.0f, 1.5f, std::nanf("")}) {
    sdpa_options o;
    o.dropout_p = p;
    try {
      sdpa_forward(q, k, v, o);
      ADD_FAILURE() << "p " << p << " accepted";
    } catch (const error& e) {
      EXPECT_NE(std::string(e.what()).find("dropout_p"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace qkv
