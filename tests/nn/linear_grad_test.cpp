// The backward of nn::linear by finite differences (awkward sizes, rank-3 input, with and without
// bias), and the accumulation of parameter gradients across calls.
#include <gtest/gtest.h>

#include "qkv/error.hpp"
#include "qkv/nn/linear.hpp"
#include "support/finite_difference.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

TEST(LinearGrad, FiniteDifferences) {
  for (const bool bias : {true, false}) {
    std::mt19937_64 rng(3);
    linear layer(7, 5, bias, rng);
    tensor x = testing::random_tensor({2, 3, 7}, rng);
    const tensor G = testing::random_tensor({2, 3, 5}, rng);
    linear_grads g = layer.make_grads();
    const tensor dx = layer.backward(x, G, g);
    const auto loss = [&] { return testing::dot(layer.forward(x), G); };
    EXPECT_LE(testing::max_finite_difference_error(x, dx, loss), 1e-3);
    for (const parameter& p : layer.parameters("", g))
      EXPECT_LE(testing::max_finite_difference_error(*p.value, *p.grad, loss), 1e-3) << p.name;
  }
}

TEST(LinearGrad, AccumulatesAndRefusesMismatchedShapes) {
  std::mt19937_64 rng(4);
  const linear layer(3, 2, true, rng);
  const tensor x = testing::random_tensor({4, 3}, rng), G = testing::random_tensor({4, 2}, rng);
  linear_grads once = layer.make_grads(), twice = layer.make_grads();
  layer.backward(x, G, once);
  layer.backward(x, G, twice);
  layer.backward(x, G, twice);
  for (int64_t i = 0; i < once.weight.numel(); ++i)
    EXPECT_FLOAT_EQ(twice.weight[i], 2 * once.weight[i]);
  EXPECT_THROW(layer.backward(x, testing::random_tensor({4, 3}, rng), once), error);
}

}  // namespace
}  // namespace qkv::nn
