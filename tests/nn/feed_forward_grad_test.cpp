// The backward of nn::feed_forward (ReLU and GELU) by finite differences.
#include <gtest/gtest.h>

#include "qkv/nn/feed_forward.hpp"
#include "support/finite_difference.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

TEST(FeedForwardGrad, FiniteDifferences) {
  for (const activation act : {activation::relu, activation::gelu}) {
    std::mt19937_64 rng(6);
    feed_forward ffn(5, 11, act, rng);
    tensor x = testing::random_tensor({3, 5}, rng);
    const tensor G = testing::random_tensor({3, 5}, rng);
    feed_forward_grads g = ffn.make_grads();
    feed_forward_cache cache;
    ffn.forward(x, cache);
    const tensor dx = ffn.backward(x, cache, G, g);
    const auto loss = [&] { return testing::dot(ffn.forward(x), G); };
    // A step of 1e-3 rarely crosses ReLU's kink; where it would, the error shows as a failure.
    EXPECT_LE(testing::max_finite_difference_error(x, dx, loss, 1e-3f), 2e-3);
    for (const parameter& p : ffn.parameters("", g))
      EXPECT_LE(testing::max_finite_difference_error(*p.value, *p.grad, loss, 1e-3f), 2e-3)
          << p.name;
  }
}

}  // namespace
}  // namespace qkv::nn
