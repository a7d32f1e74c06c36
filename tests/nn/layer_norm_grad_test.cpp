// The backward of nn::layer_norm by finite differences, on rows of awkward width.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "qkv/error.hpp"
#include "qkv/nn/layer_norm.hpp"
#include "support/finite_difference.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

TEST(LayerNormGrad, FiniteDifferences) {
  std::mt19937_64 rng(5);
  layer_norm ln(testing::random_tensor({7}, rng), testing::random_tensor({7}, rng), 1e-5f);
  tensor x = testing::random_tensor({2, 3, 7}, rng);
  const tensor G = testing::random_tensor({2, 3, 7}, rng);
  layer_norm_grads g = ln.make_grads();
  const tensor dx = ln.backward(x, G, g);
  const auto loss = [&] { return testing::dot(ln.forward(x), G); };
  EXPECT_LE(testing::max_finite_difference_error(x, dx, loss, 1e-3f), 2e-3);
  for (const parameter& p : ln.parameters("", g))
    EXPECT_LE(testing::max_finite_difference_error(*p.value, *p.grad, loss, 1e-3f), 2e-3) << p.name;
  EXPECT_THROW(ln.backward(x, testing::random_tensor({2, 7}, rng), g), error);
}

// The weight and bias gradients are summed per fixed chunk of rows, then over chunks in order:
// the same bits on one thread as on several.
TEST(LayerNormGrad, SameBitsOnOneAndTwoThreads) {
  std::mt19937_64 rng(7);
  layer_norm ln(testing::random_tensor({48}, rng), testing::random_tensor({48}, rng), 1e-5f);
  const tensor x = testing::random_tensor({333, 48}, rng),
               G = testing::random_tensor({333, 48}, rng);
  const int before = omp_get_max_threads();
  std::vector<layer_norm_grads> grads;
  std::vector<tensor> dx;
  for (const int threads : {1, 2}) {
    omp_set_num_threads(threads);
    grads.push_back(ln.make_grads());
    dx.push_back(ln.backward(x, G, grads.back()));
  }
  omp_set_num_threads(before);
  EXPECT_TRUE(std::ranges::equal(dx[0].values(), dx[1].values()));
  EXPECT_TRUE(std::ranges::equal(grads[0].weight.values(), grads[1].weight.values()));
  EXPECT_TRUE(std::ranges::equal(grads[0].bias.values(), grads[1].bias.values()));
}

// backward_add(x, dy, grads, sum) adds to sum what backward returns (to a rounding: the
// addition may be fused into the last product), with the same gradients.
TEST(LayerNormGrad, BackwardAddEqualsBackwardThenAdd) {
  std::mt19937_64 rng(9);
  layer_norm ln(testing::random_tensor({97}, rng), testing::random_tensor({97}, rng), 1e-5f);
  const tensor x = testing::random_tensor({59, 97}, rng), G = testing::random_tensor({59, 97}, rng);
  const tensor start = testing::random_tensor({59, 97}, rng);
  layer_norm_grads g_plain = ln.make_grads(), g_add = ln.make_grads();
  const tensor dx = ln.backward(x, G, g_plain);
  tensor sum = start;
  ln.backward_add(x, G, g_add, sum);
  for (int64_t i = 0; i < sum.numel(); ++i)
    ASSERT_NEAR(sum[i], start[i] + dx[i], 4e-7 * std::max(1.0f, std::abs(sum[i]))) << i;
  EXPECT_TRUE(std::ranges::equal(g_plain.weight.values(), g_add.weight.values()));
  EXPECT_TRUE(std::ranges::equal(g_plain.bias.values(), g_add.bias.values()));
}

}  // namespace
}  // namespace qkv::nn
