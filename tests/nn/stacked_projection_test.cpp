// Self-attention's stacked projection: forward(x, x, x) projects Q, K and V with one product over
// the stacked weights and reads the heads from its column blocks; backward_self returns
// dx = dQ·W_Q + dK·W_K + dV·W_V from one product. Both against the plain path, three separate
// projections of three copies of x (GQA and MHA, with and without bias, causal and with RoPE),
// and the element-wise helpers the layers share against float64 sums, on 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "nn/elementwise.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

// |a - b| within 1e-5 of b's largest entry: the stacked and the separate products add the
// same terms, possibly blocked differently.
void expect_close(const tensor& a, const tensor& b, const char* what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_LE(max_abs_diff(a, b), 1e-5 * std::max(1.0, max_abs(b))) << what;
}

// The same, for a tensor that cannot be all zeros: the comparison compares something. (The
// key bias's gradient is zero, softmax being blind to q·b_K; with one token so are dQ and dK.)
void expect_close_nonzero(const tensor& a, const tensor& b, const char* what) {
  expect_close(a, b, what);
  EXPECT_GT(max_abs(b), 1e-3) << what;
}

void expect_close(const linear_grads& a, const linear_grads& b, const char* what) {
  expect_close(a.weight, b.weight, what);
  ASSERT_EQ(a.bias.has_value(), b.bias.has_value()) << what;
  if (a.bias) expect_close(*a.bias, *b.bias, what);
}

struct layer_case {
  mha_config config;
  int64_t B, N;
};

// E24_H6_KV2_B2_N19: the layer's sizes and the input's.
std::string case_name(const layer_case& c) {
  std::ostringstream name;
  name << "E" << c.config.embed_dim << "_H" << c.config.num_heads << "_KV"
       << (c.config.kv_heads ? c.config.kv_heads : c.config.num_heads)
       << (c.config.bias ? "" : "_nobias") << "_B" << c.B << "_N" << c.N;
  return name.str();
}

void PrintTo(const layer_case& c, std::ostream* os) {
  *os << case_name(c);
}

class StackedProjection : public ::testing::TestWithParam<layer_case> {};

TEST_P(StackedProjection, ForwardAndBackwardEqualTheSeparateProjections) {
  const layer_case c = GetParam();
  std::mt19937_64 rng(41);
  multihead_attention mha(c.config, rng);
  const int64_t E = c.config.embed_dim;
  const tensor x = testing::random_tensor({c.B, c.N, E}, rng);
  const tensor G = testing::random_tensor({c.B, c.N, E}, rng);
  const tensor xq = x, xk = x, xv = x;  // equal values, three tensors: the separate path
  mha_options o;
  o.masks.is_causal = true;

  const mha_result stacked = mha.forward(x, x, x, o);
  const mha_result separate = mha.forward(xq, xk, xv, o);
  ASSERT_EQ(stacked.qkv.shape(), (shape_t{c.B, c.N, E + 2 * mha.kv_heads() * mha.head_dim()}));
  ASSERT_EQ(separate.qkv.rank(), 0);
  expect_close_nonzero(stacked.out, separate.out, "out");
  expect_close_nonzero(stacked.k_heads().to_tensor(), separate.k_heads().to_tensor(), "K");

  mha_grads g_stacked = mha.make_grads(), g_self = mha.make_grads(), g_sep = mha.make_grads();
  const mha_input_grads d_sep = mha.backward(xq, xk, xv, separate, G, g_sep, o);
  // backward after a stacked forward: each input's gradient from its column block.
  const mha_input_grads d_stacked = mha.backward(x, x, x, stacked, G, g_stacked, o);
  expect_close(d_stacked.query, d_sep.query, "d query");
  expect_close(d_stacked.key, d_sep.key, "d key");
  expect_close_nonzero(d_stacked.value, d_sep.value, "d value");
  // backward_self: their sum from one product.
  const mha_input_grads d_self = mha.backward_self(x, stacked, G, g_self, o);
  tensor sum = d_sep.query;
  for (int64_t i = 0; i < sum.numel(); ++i) sum[i] += d_sep.key[i] + d_sep.value[i];
  expect_close_nonzero(d_self.query, sum, "dx");
  EXPECT_EQ(d_self.key.numel() + d_self.value.numel(), 0);
  for (const mha_grads* g : {&g_stacked, &g_self}) {
    expect_close(g->q, g_sep.q, "W_Q");
    expect_close(g->k, g_sep.k, "W_K");
    expect_close(g->v, g_sep.v, "W_V");
    expect_close_nonzero(g->v.weight, g_sep.v.weight, "W_V");
    expect_close(g->out, g_sep.out, "W_O");
  }
  // backward_self after a separate forward sums the three.
  mha_grads g_sum = mha.make_grads();
  expect_close(mha.backward_self(xq, separate, G, g_sum, o).query, sum, "dx, separate");
}

TEST_P(StackedProjection, RotaryEmbeddingsTurnTheStackedQueriesAndKeys) {
  const layer_case c = GetParam();
  std::mt19937_64 rng(43);
  const multihead_attention mha(c.config, rng);
  const tensor x = testing::random_tensor({c.B, c.N, c.config.embed_dim}, rng);
  const tensor xk = x, xv = x;
  mha_options o;
  o.masks.is_causal = true;
  o.rope = rope_config{};
  const mha_result stacked = mha.forward(x, x, x, o), separate = mha.forward(x, xk, xv, o);
  expect_close(stacked.q_heads().to_tensor(), separate.q_heads().to_tensor(), "rotated Q");
  expect_close_nonzero(stacked.k_heads().to_tensor(), separate.k_heads().to_tensor(), "rotated K");
  expect_close_nonzero(stacked.out, separate.out, "out");
}

INSTANTIATE_TEST_SUITE_P(
    Layers, StackedProjection,
    ::testing::Values(layer_case{{.embed_dim = 24, .num_heads = 6, .kv_heads = 2}, 2, 19},
                      layer_case{{.embed_dim = 16, .num_heads = 4, .bias = false}, 3, 1},
                      layer_case{{.embed_dim = 32, .num_heads = 2}, 1, 59}),
    [](const auto& info) { return case_name(info.param); });

// sums[j] += Σ_r x[r·ld + j] and Σ x² against float64, with the same bits on 1 and 2 threads.
TEST(Elementwise, ColumnSumsAndSquaresMatchFloat64OnOneAndTwoThreads) {
  std::mt19937_64 rng(47);
  const int64_t R = 1025, n = 97, ld = 100;
  const tensor x = testing::random_tensor({R, ld}, rng);
  const int before = omp_get_max_threads();
  std::vector<tensor> sums;
  std::vector<double> squares;
  for (const int threads : {1, 2}) {
    omp_set_num_threads(threads);
    tensor s({n}, 0.5f);
    detail::add_column_sums(s.data(), x.data(), R, n, ld);
    sums.push_back(s);
    squares.push_back(detail::sum_of_squares(x.data(), x.numel()));
  }
  omp_set_num_threads(before);
  double worst = 0.0, expected_squares = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    double expected = 0.5;
    for (int64_t r = 0; r < R; ++r) expected += x[r * ld + j];
    worst = std::max(worst, std::abs(sums[0][j] - expected));
  }
  for (const float v : x.values()) expected_squares += static_cast<double>(v) * v;
  EXPECT_LE(worst, 2e-4);  // 1025 float additions of values up to about 3
  EXPECT_NEAR(squares[0], expected_squares, 1e-9 * expected_squares);
  EXPECT_EQ(sums[0].values().size(), sums[1].values().size());
  for (int64_t j = 0; j < n; ++j) EXPECT_EQ(sums[0][j], sums[1][j]) << j;
  EXPECT_EQ(squares[0], squares[1]);
}

}  // namespace
}  // namespace qkv::nn
