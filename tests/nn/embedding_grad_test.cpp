// The backward of nn::embedding: repeated ids sum their rows' gradients; checked against finite
// differences (the lookup is linear in the table, so they agree to rounding).
#include <gtest/gtest.h>

#include "qkv/error.hpp"
#include "qkv/nn/embedding.hpp"
#include "support/finite_difference.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

TEST(EmbeddingGrad, ScatterAddMatchesFiniteDifferences) {
  std::mt19937_64 rng(8);
  embedding table(5, 3, rng);
  const std::vector<int64_t> ids{4, 0, 4, 2};
  const tensor G = testing::random_tensor({2, 2, 3}, rng);
  tensor grad({5, 3});
  table.backward(ids, G, grad);
  for (int64_t e = 0; e < 3; ++e) {
    EXPECT_FLOAT_EQ(grad.at({4, e}), G[e] + G[6 + e]);
    EXPECT_EQ(grad.at({1, e}), 0.0f);
  }
  parameter p = table.as_parameter("", grad, true);
  const auto loss = [&] { return testing::dot(table.forward(ids, {2, 2}), G); };
  EXPECT_LE(testing::max_finite_difference_error(*p.value, grad, loss, 1e-2f), 1e-3);
  tensor wrong({4, 3});
  EXPECT_THROW(table.backward(ids, G, wrong), error);
}

}  // namespace
}  // namespace qkv::nn
