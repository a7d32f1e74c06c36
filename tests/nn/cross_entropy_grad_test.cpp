// Cross-entropy: the value on a hand-computed case, the gradient by finite differences, large
// logits without overflow, and refused targets.
#include <gtest/gtest.h>

#include <cmath>

#include "qkv/error.hpp"
#include "qkv/nn/cross_entropy.hpp"
#include "support/finite_difference.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

TEST(CrossEntropy, HandComputedValue) {
  // Row 0: logits (0, ln 3), target 1: −log(3/4). Row 1: (0, 0), target 0: log 2.
  const tensor logits({2, 2}, {0.0f, std::log(3.0f), 0.0f, 0.0f});
  const cross_entropy_result r = cross_entropy(logits, {1, 0});
  EXPECT_NEAR(r.loss, (-std::log(0.75) + std::log(2.0)) / 2, 1e-7);
  EXPECT_NEAR(r.dlogits.at({0, 1}), (0.75 - 1) / 2, 1e-7);
  EXPECT_EQ(r.correct, 2);  // row 1 ties: the first index wins
}

TEST(CrossEntropy, GradientByFiniteDifferences) {
  std::mt19937_64 rng(1);
  tensor logits = testing::random_tensor({5, 11}, rng, 2.0f);
  const std::vector<int32_t> targets{0, 10, 3, 3, 7};
  const tensor d = cross_entropy(logits, targets).dlogits;
  const auto loss = [&] { return cross_entropy(logits, targets).loss; };
  EXPECT_LE(testing::max_finite_difference_error(logits, d, loss, 1e-2f, 1000), 1e-5);
}

TEST(CrossEntropy, LargeLogitsStayFinite) {
  const cross_entropy_result r = cross_entropy(tensor({1, 3}, {1e4f, -1e4f, 0.0f}), {1});
  EXPECT_NEAR(r.loss, 2e4, 1e-2);
  for (const float g : r.dlogits.values()) EXPECT_TRUE(std::isfinite(g));
}

TEST(CrossEntropy, RefusesBadTargets) {
  const tensor logits({2, 3});
  EXPECT_THROW(cross_entropy(logits, {0, 3}), error);
  EXPECT_THROW(cross_entropy(logits, {0}), error);
  EXPECT_THROW(cross_entropy(tensor({3}), {0, 0, 0}), error);
}

}  // namespace
}  // namespace qkv::nn
