// nn::multihead_attention against PyTorch's nn.MultiheadAttention (golden mha and mha_grad
// forward outputs and weights), against float64 loops for what PyTorch lacks (GQA, kdim/vdim
// without bias), and its state_dict loading and mask checks.
#include "qkv/nn/multihead_attention.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "qkv/error.hpp"
#include "support/golden.hpp"
#include "support/golden_nn.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

using testing::golden_case;
using testing::golden_tolerance;
using testing::max_abs_diff;

multihead_attention load_golden_mha(const golden_case& c) {
  return testing::load_golden_module<multihead_attention>(
      c, c.data()["params"]["num_heads"].get<int64_t>());
}

mha_options golden_options(const golden_case& c, attention_weights need_weights) {
  mha_options o;
  o.masks = testing::golden_masks(c, "attn_mask", "key_padding_mask");
  o.need_weights = need_weights;
  return o;
}

mha_result run(const golden_case& c, const multihead_attention& mha, const mha_options& o) {
  const tensor query = c.input("query");
  if (c.has_input("key")) return mha.forward(query, c.input("key"), c.input("value"), o);
  return mha.forward(query, query, query, o);
}

// PyTorch's NaN rows (every key masked) are, by our contract, attention output 0: the layer
// output is then out_proj's bias.
tensor expected_output(const golden_case& c, const multihead_attention& mha) {
  tensor e = c.expected("attn_output_float64");
  const int64_t E = mha.embed_dim();
  for (int64_t n = 0; n < e.numel(); ++n)
    if (std::isnan(e[n])) e[n] = mha.out_proj().bias() ? (*mha.out_proj().bias())[n % E] : 0.0f;
  return e;
}

class GoldenMha : public ::testing::TestWithParam<golden_case> {};

TEST_P(GoldenMha, OutputAndAveragedWeightsMatchPyTorchFloat64) {
  const golden_case& c = GetParam();
  const multihead_attention mha = load_golden_mha(c);
  const mha_result r = run(c, mha, golden_options(c, attention_weights::averaged));
  const tensor out = expected_output(c, mha);
  EXPECT_LE(max_abs_diff(r.out, out), golden_tolerance(c, out, 1e-5)) << c.id;
  const tensor w = testing::nan_to_zero(c.expected("attn_weights_avg_float64"));
  ASSERT_TRUE(r.weights);
  EXPECT_LE(max_abs_diff(*r.weights, w), golden_tolerance(c, w, 1e-5)) << c.id;
  const tensor q = c.expected("q_heads_float64");
  EXPECT_LE(max_abs_diff(r.q_heads().to_tensor(), q), golden_tolerance(c, q, 1e-5)) << c.id;
}

TEST_P(GoldenMha, PerHeadWeightsMatchPyTorchFloat64) {
  const golden_case& c = GetParam();
  const mha_result r = run(c, load_golden_mha(c), golden_options(c, attention_weights::per_head));
  const tensor w = testing::nan_to_zero(c.expected("attn_weights_per_head_float64"));
  ASSERT_TRUE(r.weights);
  EXPECT_LE(max_abs_diff(*r.weights, w), golden_tolerance(c, w, 1e-5)) << c.id;
}

TEST_P(GoldenMha, OutputWithoutWeightsThroughDefaultKernelMatches) {
  const golden_case& c = GetParam();
  const multihead_attention mha = load_golden_mha(c);
  const mha_result r = run(c, mha, golden_options(c, attention_weights::none));
  EXPECT_FALSE(r.weights);
  const tensor out = expected_output(c, mha);
  EXPECT_LE(max_abs_diff(r.out, out), golden_tolerance(c, out, 1e-5)) << c.id;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenMha,
                         ::testing::ValuesIn(testing::load_golden({"mha", "mha_grad"})),
                         testing::golden_case_name);

TEST(MultiheadAttention, AllKeysPaddedGivesOutProjBiasNotNaN) {
  for (const golden_case& c : testing::load_golden("mha")) {
    if (c.category != "d_fully_masked_row_mha") continue;
    const multihead_attention mha = load_golden_mha(c);
    const mha_result r = run(c, mha, golden_options(c, attention_weights::averaged));
    const int64_t Nq = r.out.size(1), E = mha.embed_dim();
    for (int64_t i = 0; i < Nq; ++i)
      for (int64_t e = 0; e < E; ++e) {
        ASSERT_EQ(r.out.at({1, i, e}), (*mha.out_proj().bias())[e]) << c.id;
        for (int64_t j = 0; j < r.weights->size(2); ++j) ASSERT_EQ(r.weights->at({1, i, j}), 0.0f);
      }
    return;
  }
  FAIL() << "no d_fully_masked_row_mha golden case";
}

// An independent float64 composition: projections, per-head softmax(Q·K^T/sqrt(hd) + bias)·V,
// output projection. keep(b,h,i,j) says which keys are visible.
template <typename Keep>
tensor naive_mha(const multihead_attention& m, const tensor& xq, const tensor& xk, const tensor& xv,
                 Keep keep) {
  const auto project = [](const linear& l, const tensor& x) {
    const int64_t M = x.numel() / x.size(-1), in = l.in_features(), out = l.out_features();
    std::vector<double> y(static_cast<size_t>(M * out));
    for (int64_t r = 0; r < M; ++r)
      for (int64_t o = 0; o < out; ++o) {
        double s = l.bias() ? (*l.bias())[o] : 0.0;
        for (int64_t c = 0; c < in; ++c) s += double(x[r * in + c]) * l.weight()[o * in + c];
        y[r * out + o] = s;
      }
    return y;
  };
  const int64_t B = xq.size(0), Nq = xq.size(1), Nk = xk.size(1), E = m.embed_dim();
  const int64_t H = m.num_heads(), hd = m.head_dim(), group = H / m.kv_heads();
  const auto q = project(m.q_proj(), xq), k = project(m.k_proj(), xk), v = project(m.v_proj(), xv);
  const int64_t kv_width = m.kv_heads() * hd;
  tensor concat({B, Nq, E});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Nq; ++i) {
        const int64_t hk = h / group;
        std::vector<double> p(static_cast<size_t>(Nk));
        double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
        for (int64_t j = 0; j < Nk; ++j) {
          double s = 0.0;
          for (int64_t c = 0; c < hd; ++c)
            s += q[(b * Nq + i) * E + h * hd + c] * k[(b * Nk + j) * kv_width + hk * hd + c];
          p[j] = keep(b, h, i, j) ? s / std::sqrt(double(hd)) : -INFINITY;
          mx = std::max(mx, p[j]);
        }
        for (auto& x : p) sum += x = std::exp(x - mx);
        for (int64_t c = 0; c < hd; ++c) {
          double o = 0.0;
          for (int64_t j = 0; j < Nk; ++j)
            o += p[j] / sum * v[(b * Nk + j) * kv_width + hk * hd + c];
          concat.at({b, i, h * hd + c}) = static_cast<float>(o);
        }
      }
  const auto out = project(m.out_proj(), concat);
  return tensor({B, Nq, E}, std::vector<float>(out.begin(), out.end()));
}

TEST(MultiheadAttention, GqaCrossAttentionWithKdimVdimMatchesFloat64Loops) {
  std::mt19937_64 rng(7);
  for (bool bias : {true, false}) {
    const multihead_attention mha(
        {.embed_dim = 24, .num_heads = 6, .kv_heads = 2, .kdim = 5, .vdim = 11, .bias = bias}, rng);
    EXPECT_EQ(mha.kv_heads(), 2);
    const tensor xq = testing::random_tensor({2, 7, 24}, rng);
    const tensor xk = testing::random_tensor({2, 9, 5}, rng);
    const tensor xv = testing::random_tensor({2, 9, 11}, rng);
    mha_options o;
    o.masks.key_padding_mask = bool_tensor({2, 9});
    for (int64_t j = 6; j < 9; ++j) o.masks.key_padding_mask->at({1, j}) = 1;
    o.masks.is_causal = true;
    const mha_result r = mha.forward(xq, xk, xv, o);
    const tensor expected = naive_mha(
        mha, xq, xk, xv,
        [&](int64_t b, int64_t, int64_t i, int64_t j) { return j <= i && !(b == 1 && j >= 6); });
    EXPECT_LE(max_abs_diff(r.out, expected), 1e-5 * std::max(1.0, testing::max_abs(expected)));
  }
}

TEST(MultiheadAttention, PerBatchHeadMaskOf3DShape) {
  std::mt19937_64 rng(3);
  const multihead_attention mha({.embed_dim = 8, .num_heads = 2}, rng);
  const tensor x = testing::random_tensor({2, 4, 8}, rng);
  mha_options o;
  o.masks.attn_mask = bool_tensor({4, 4, 4});  // [B·H, Nq, Nk]: true = not allowed
  for (int64_t bh = 0; bh < 4; ++bh)
    for (int64_t i = 0; i < 4; ++i) o.masks.attn_mask->at({bh, i, (bh + i) % 4}) = 1;
  const tensor expected = naive_mha(mha, x, x, x, [](int64_t b, int64_t h, int64_t i, int64_t j) {
    return j != (b * 2 + h + i) % 4;
  });
  EXPECT_LE(max_abs_diff(mha.forward(x, x, x, o).out, expected),
            1e-5 * std::max(1.0, testing::max_abs(expected)));
}

TEST(MultiheadAttention, SaveLoadRoundTripKeepsEveryParameter) {
  std::mt19937_64 rng(5);
  for (const mha_config& config :
       {mha_config{.embed_dim = 8, .num_heads = 2},
        mha_config{.embed_dim = 8, .num_heads = 4, .kv_heads = 1},
        mha_config{.embed_dim = 8, .num_heads = 2, .kdim = 3, .bias = false}}) {
    const multihead_attention a(config, rng);
    state_dict dict;
    a.save(dict, "attn.");
    EXPECT_EQ(dict.count("attn.in_proj_weight"),
              config.kv_heads == 0 && config.kdim == 0 ? 1u : 0u);
    state_dict_reader reader(dict, "");
    const multihead_attention b = multihead_attention::load(reader, "attn.", config.num_heads);
    reader.finish();
    EXPECT_EQ(b.kv_heads(), a.kv_heads());
    EXPECT_EQ(max_abs_diff(b.k_proj().weight(), a.k_proj().weight()), 0.0);
    EXPECT_EQ(b.out_proj().bias().has_value(), config.bias);
  }
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no qkv::error";
  } catch (const error& e) {
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
  }
}

TEST(MultiheadAttention, LoadingNamesTheWrongTensor) {
  std::mt19937_64 rng(1);
  state_dict good;
  multihead_attention({.embed_dim = 8, .num_heads = 2}, rng).save(good, "");
  const auto load = [](state_dict d, int64_t heads) {
    state_dict_reader r(d, "w.safetensors");
    multihead_attention::load(r, "", heads);
    r.finish();
  };
  state_dict d = good;
  d.erase("out_proj.bias");
  d["out_proj.bias"] = tensor({7});
  expect_error([&] { load(d, 2); }, {"w.safetensors", "out_proj.bias", "[7]", "[8]"});
  d = good;
  d.erase("in_proj_weight");
  expect_error([&] { load(d, 2); }, {"missing", "q_proj_weight"});
  d = good;
  d["extra.weight"] = tensor({1});
  expect_error([&] { load(d, 2); }, {"unexpected", "extra.weight"});
  expect_error([&] { load(good, 3); }, {"num_heads", "3", "8"});
}

TEST(MultiheadAttention, BadInputsAndMasksNameTheArgumentAndShapes) {
  std::mt19937_64 rng(2);
  const multihead_attention mha({.embed_dim = 8, .num_heads = 2}, rng);
  const tensor x({2, 3, 8});
  expect_error([&] { mha.forward(tensor({2, 3, 7}), x, x); }, {"query", "[2, 3, 7]"});
  expect_error([&] { mha.forward(x, tensor({1, 3, 8}), x); }, {"key", "[1, 3, 8]"});
  mha_options o;
  o.masks.key_padding_mask = bool_tensor({2, 4});
  expect_error([&] { mha.forward(x, x, x, o); }, {"key_padding_mask", "[2, 3]", "[2, 4]"});
  o = {};
  o.masks.attn_mask = bool_tensor({3, 2});
  expect_error([&] { mha.forward(x, x, x, o); }, {"attn_mask", "[3, 2]"});
  o.masks.attn_mask_additive = tensor({3, 3});
  expect_error([&] { mha.forward(x, x, x, o); }, {"attn_mask", "not both"});
}

}  // namespace
}  // namespace qkv::nn
