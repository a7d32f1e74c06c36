// The backward of nn::layer_norm by finite differences, on rows of awkward width.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace qkv::nn
