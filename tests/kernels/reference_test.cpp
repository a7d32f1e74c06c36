// The reference kernels against PyTorch's golden data (docs/contracts.md section 3 tolerances),
// against finite differences, and on the edge cases docs/contracts.md section 1 defines.
#include "qkv/reference.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "qkv/attention.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::golden_case;
using testing::max_abs;
using testing::max_abs_diff;

using testing::golden_tolerance;
using testing::nan_to_zero;

class GoldenSdpa : public ::testing::TestWithParam<golden_case> {};

TEST_P(GoldenSdpa, ReferenceMatchesPyTorchFloat64) {
  const golden_case& c = GetParam();
  sdpa_options options = c.sdpa_options_for();
  options.run.impl = sdpa_impl::reference;
  const sdpa_result r = sdpa_forward(c.input("q"), c.input("k"), c.input("v"), options);
  const tensor expected = nan_to_zero(c.expected("out_float64"));
  EXPECT_LE(max_abs_diff(r.out, expected), golden_tolerance(c, expected, 1e-5)) << c.id;
  // Rows with no visible key: O = 0 (checked above) and lse = -inf.
  if (c.data().contains("nan_rows_BHq"))
    for (const auto& row : c.data()["nan_rows_BHq"]) {
      const int64_t b = row[0], h = row[1], i = row[2];
      EXPECT_EQ(r.lse.at({b, h, i}), -std::numeric_limits<float>::infinity()) << c.id;
    }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenSdpa, ::testing::ValuesIn(testing::load_golden("sdpa")),
                         testing::golden_case_name);

class GoldenSdpaGrad : public ::testing::TestWithParam<golden_case> {};

TEST_P(GoldenSdpaGrad, ReferenceBackwardMatchesPyTorchFloat64) {
  const golden_case& c = GetParam();
  sdpa_options options = c.sdpa_options_for();
  options.run.impl = sdpa_impl::reference;
  const tensor q = c.input("q"), k = c.input("k"), v = c.input("v");
  const sdpa_result fwd = sdpa_forward(q, k, v, options);
  const tensor expected_out = c.expected("out_float64");
  EXPECT_LE(max_abs_diff(fwd.out, expected_out), golden_tolerance(c, expected_out, 1e-5));
  const sdpa_gradients g = sdpa_backward(q, k, v, fwd, c.input("G"), options);
  for (const auto& [name, got] : {std::pair{"dQ", &g.dq}, {"dK", &g.dk}, {"dV", &g.dv}}) {
    const tensor expected = c.expected(std::string(name) + "_float64");
    EXPECT_LE(max_abs_diff(*got, expected), golden_tolerance(c, expected, 1e-4))
        << c.id << " " << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenSdpaGrad,
                         ::testing::ValuesIn(testing::load_golden("sdpa_grad")),
                         testing::golden_case_name);

// Collects the float64 output the reference computes, for finite differences.
class output_collector : public attention_observer {
 public:
  std::vector<double> out;
  void on_step(attention_step step, int64_t, int64_t, const double* values, int64_t rows,
               int64_t cols) override {
    if (step == attention_step::output) out.insert(out.end(), values, values + rows * cols);
  }
};

// L = sum(O * G) in float64, O computed by the reference.
double loss(const tensor& q, const tensor& k, const tensor& v, const tensor& g,
            const sdpa_options& options) {
  attention_params p = make_attention_params(q, k, v, options);
  tensor o({p.B, p.Hq, p.Nq, p.dv});
  p.o = o.data();
  output_collector collect;
  sdpa_forward_reference(p, &collect);
  double l = 0.0;
  for (size_t i = 0; i < collect.out.size(); ++i) l += collect.out[i] * g[static_cast<int64_t>(i)];
  return l;
}

struct fd_shape {
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
  causal_mode causal;
  bool padding_mask;
  float dropout = 0.0f;  // attention dropout p, its mask fixed by the seed
};

std::string fd_shape_name(const fd_shape& s) {
  std::ostringstream name;
  name << "B" << s.B << "_Hq" << s.Hq << "_Hkv" << s.Hkv << "_q" << s.Nq << "_k" << s.Nk << "_d"
       << s.d << "_dv" << s.dv << "_" << to_string(s.causal) << (s.padding_mask ? "_padding" : "")
       << (s.dropout > 0.0f ? "_dropout" : "");
  std::string text = name.str();
  for (char& ch : text)
    if (ch == '-') ch = '_';
  return text;
}

void PrintTo(const fd_shape& s, std::ostream* os) {
  *os << fd_shape_name(s);
}

class ReferenceFiniteDifferences : public ::testing::TestWithParam<fd_shape> {};

TEST_P(ReferenceFiniteDifferences, BackwardMatchesCentralDifferences) {
  const fd_shape s = GetParam();
  std::mt19937_64 rng(1234 + s.Nq * 7 + s.Nk);
  tensor q = testing::random_grid_tensor({s.B, s.Hq, s.Nq, s.d}, rng);
  tensor k = testing::random_grid_tensor({s.B, s.Hkv, s.Nk, s.d}, rng);
  tensor v = testing::random_grid_tensor({s.B, s.Hkv, s.Nk, s.dv}, rng);
  const tensor g = testing::random_grid_tensor({s.B, s.Hq, s.Nq, s.dv}, rng);
  sdpa_options options;
  options.run.impl = sdpa_impl::reference;
  options.causal = s.causal;
  options.dropout_p = s.dropout;
  options.dropout_seed = 77;
  if (s.padding_mask) {  // key padding [B,1,1,Nk]: the last key of batch 0 is padding
    bool_tensor m({s.B, 1, 1, s.Nk}, 1);
    m.at({0, 0, 0, s.Nk - 1}) = 0;
    options.mask.boolean = m;
  }
  const sdpa_result fwd = sdpa_forward(q, k, v, options);
  const sdpa_gradients grads = sdpa_backward(q, k, v, fwd, g, options);
  const float h = 1.0f / 1024.0f;
  for (auto [x, dx] : {std::pair{&q, &grads.dq}, {&k, &grads.dk}, {&v, &grads.dv}}) {
    for (int64_t i = 0; i < x->numel(); ++i) {
      const float saved = (*x)[i];
      (*x)[i] = saved + h;
      const double up = loss(q, k, v, g, options);
      (*x)[i] = saved - h;
      const double down = loss(q, k, v, g, options);
      (*x)[i] = saved;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR((*dx)[i], numeric, 1e-4 * std::max(1.0, std::fabs(numeric))) << "element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ReferenceFiniteDifferences,
    ::testing::Values(fd_shape{1, 1, 1, 1, 1, 1, 1, causal_mode::none, false},
                      fd_shape{1, 2, 2, 3, 5, 4, 2, causal_mode::none, false},
                      fd_shape{2, 4, 2, 4, 3, 3, 5, causal_mode::top_left, false},
                      fd_shape{1, 3, 1, 5, 7, 2, 3, causal_mode::bottom_right, true},
                      fd_shape{2, 2, 1, 2, 6, 5, 1, causal_mode::none, true},
                      fd_shape{2, 4, 2, 4, 9, 3, 5, causal_mode::none, false, 0.3f},
                      fd_shape{1, 3, 1, 5, 7, 2, 3, causal_mode::bottom_right, true, 0.5f}),
    [](const auto& info) { return fd_shape_name(info.param); });

TEST(Reference, FullyMaskedRowGivesZeroOutputAndGradients) {
  std::mt19937_64 rng(7);
  const tensor q = testing::random_tensor({1, 1, 3, 4}, rng);
  const tensor k = testing::random_tensor({1, 1, 5, 4}, rng);
  const tensor v = testing::random_tensor({1, 1, 5, 2}, rng);
  sdpa_options options;
  options.run.impl = sdpa_impl::reference;
  // A boolean mask hiding every key from query 1.
  bool_tensor m({3, 5}, 1);
  for (int64_t j = 0; j < 5; ++j) m.at({1, j}) = 0;
  options.mask.boolean = m;
  const sdpa_result r = sdpa_forward(q, k, v, options);
  EXPECT_EQ(r.out.at({0, 0, 1, 0}), 0.0f);
  EXPECT_EQ(r.out.at({0, 0, 1, 1}), 0.0f);
  EXPECT_EQ(r.lse.at({0, 0, 1}), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isfinite(r.lse.at({0, 0, 0})));
  const tensor g = testing::random_tensor({1, 1, 3, 2}, rng);
  const sdpa_gradients grads = sdpa_backward(q, k, v, r, g, options);
  for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(grads.dq.at({0, 0, 1, c}), 0.0f);
}

TEST(Reference, LogsumexpIsTheNormaliserOfTheRow) {
  // lse_i = log sum_j exp(S_ij): check against a direct float64 computation.
  std::mt19937_64 rng(11);
  const tensor q = testing::random_tensor({1, 2, 3, 4}, rng, 3.0f);
  const tensor k = testing::random_tensor({1, 2, 6, 4}, rng, 3.0f);
  const tensor v = testing::random_tensor({1, 2, 6, 4}, rng);
  sdpa_options options;
  options.run.impl = sdpa_impl::reference;
  options.scale = 0.3f;
  const sdpa_result r = sdpa_forward(q, k, v, options);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 3; ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < 6; ++j) {
        double s = 0.0;
        for (int64_t c = 0; c < 4; ++c)
          s += static_cast<double>(q.at({0, h, i, c})) * k.at({0, h, j, c});
        sum += std::exp(0.3f * s);
      }
      EXPECT_NEAR(r.lse.at({0, h, i}), std::log(sum), 1e-5);
    }
}

TEST(Reference, GroupedQueryHeadsShareTheirKvHead) {
  // GQA with Hq = 4, Hkv = 2 equals MHA with each kv head repeated for its 2 query heads.
  std::mt19937_64 rng(5);
  const tensor q = testing::random_tensor({2, 4, 3, 5}, rng);
  const tensor k = testing::random_tensor({2, 2, 4, 5}, rng);
  const tensor v = testing::random_tensor({2, 2, 4, 3}, rng);
  tensor k_rep({2, 4, 4, 5}), v_rep({2, 4, 4, 3});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t j = 0; j < 4; ++j) {
        for (int64_t c = 0; c < 5; ++c) k_rep.at({b, h, j, c}) = k.at({b, h / 2, j, c});
        for (int64_t c = 0; c < 3; ++c) v_rep.at({b, h, j, c}) = v.at({b, h / 2, j, c});
      }
  sdpa_options options;
  options.run.impl = sdpa_impl::reference;
  EXPECT_EQ(
      max_abs_diff(sdpa_forward(q, k, v, options).out, sdpa_forward(q, k_rep, v_rep, options).out),
      0.0);
}

TEST(Reference, LargeScoresDoNotOverflow) {
  const tensor q({1, 1, 1, 1}, {100.0f});
  const tensor k({1, 1, 3, 1}, {100.0f, 99.0f, -100.0f});
  const tensor v({1, 1, 3, 1}, {1.0f, 2.0f, 3.0f});
  sdpa_options options;
  options.run.impl = sdpa_impl::reference;
  options.scale = 1.0f;  // scores 1e4, 9.9e3, -1e4
  const sdpa_result r = sdpa_forward(q, k, v, options);
  EXPECT_FLOAT_EQ(r.out[0], 1.0f);
  EXPECT_FLOAT_EQ(r.lse[0], 1e4f);
}

}  // namespace
}  // namespace qkv
