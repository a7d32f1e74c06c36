// The single-head self-attention layer against the StatQuest "Write a poem" example computed by
// PyTorch (float64 block: docs/contracts.md section 3's 1e-5 tolerance), and its input checks.
#include "qkv/nn/self_attention.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "qkv/error.hpp"
#include "support/golden.hpp"
#include "support/write_a_poem.hpp"

namespace qkv {
namespace {

void expect_close(const tensor& actual, const nlohmann::json& expected_rows, const char* what) {
  const tensor expected = testing::matrix_from_json(expected_rows);
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  const double tolerance = 1e-5 * std::max(1.0, testing::max_abs(expected));
  EXPECT_LE(testing::max_abs_diff(actual, expected), tolerance) << what;
}

nn::self_attention poem_layer(const nlohmann::json& poem) {
  return nn::self_attention(testing::matrix_from_json(poem["W_q_weight"]),
                            testing::matrix_from_json(poem["W_k_weight"]),
                            testing::matrix_from_json(poem["W_v_weight"]));
}

TEST(SelfAttention, WriteAPoemMatchesPyTorch) {
  const nlohmann::json poem = testing::load_write_a_poem();
  const nn::self_attention layer = poem_layer(poem);
  const tensor x = testing::matrix_from_json(poem["encodings"]);
  const nlohmann::json& f64 = poem["float64"];

  const nn::qkv_projections p = layer.project(x);
  expect_close(p.q, f64["q"], "Q");
  expect_close(p.k, f64["k"], "K");
  expect_close(p.v, f64["v"], "V");
  const nn::self_attention::result r = layer.forward_with_weights(x);
  expect_close(r.weights, f64["percents"], "weights");
  expect_close(r.out, f64["out"], "output");
  expect_close(layer.forward(x), f64["out"], "forward");

  // The lesson's numbers: "Write" attends 36% to itself, 40% to "a", 24% to "poem"; its
  // output row starts 1.01.
  EXPECT_EQ(std::lround(100 * r.weights.at({0, 0})), 36);
  EXPECT_EQ(std::lround(100 * r.weights.at({0, 1})), 40);
  EXPECT_EQ(std::lround(100 * r.weights.at({0, 2})), 24);
  EXPECT_EQ(std::lround(100 * r.out.at({0, 0})), 101);
}

TEST(SelfAttention, CausalHidesLaterTokensAndBatchesIndependently) {
  const nlohmann::json poem = testing::load_write_a_poem();
  const nn::self_attention layer = poem_layer(poem);
  const tensor x = testing::matrix_from_json(poem["encodings"]);
  const nn::self_attention::result r = layer.forward_with_weights(x, /*causal=*/true);
  // Token 0 sees only itself: weight 1 and output = its own value row.
  EXPECT_EQ(r.weights.at({0, 0}), 1.0f);
  EXPECT_EQ(r.weights.at({0, 1}), 0.0f);
  EXPECT_EQ(r.weights.at({1, 2}), 0.0f);
  const nn::qkv_projections p = layer.project(x);
  EXPECT_FLOAT_EQ(r.out.at({0, 0}), p.v.at({0, 0}));
  // forward() may run the fused kernel: docs/contracts.md section 3's fused-vs-reference bound.
  const double tolerance = 2e-5 * std::max(1.0, testing::max_abs(r.out));
  // The last token sees every token, so its row equals the unmasked one.
  const tensor full = layer.forward(x);
  EXPECT_NEAR(r.out.at({2, 1}), full.at({2, 1}), tolerance);

  // [B, N, d_model]: two copies of the sentence give two copies of the output.
  tensor batch({2, 3, 2});
  for (int64_t e = 0; e < 12; ++e) batch[e] = x[e % 6];
  const tensor out = layer.forward(batch, true);
  ASSERT_EQ(out.shape(), (shape_t{2, 3, 2}));
  for (int64_t e = 0; e < 12; ++e) EXPECT_NEAR(out[e], r.out[e % 6], tolerance);
}

TEST(SelfAttention, RejectsMismatchedShapes) {
  const tensor w({2, 2});
  EXPECT_THROW(nn::self_attention(w, tensor({3, 2}), w), error);  // W_K != W_Q's shape
  EXPECT_THROW(nn::self_attention(w, w, tensor({2, 3})), error);  // W_V's d_model differs
  EXPECT_THROW(nn::self_attention(tensor({2}), w, w), error);     // not a matrix
  const nn::self_attention layer(w, w, tensor({5, 2}));
  try {
    layer.project(tensor({3, 4}));
    FAIL() << "X with 4 columns was accepted for d_model 2";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("[3, 4]"), std::string::npos) << e.what();
  }
  EXPECT_EQ(layer.forward(tensor({4, 2})).shape(), (shape_t{4, 5}));
}

}  // namespace
}  // namespace qkv
