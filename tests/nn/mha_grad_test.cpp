// The backward of nn::multihead_attention: every golden mha_grad case (PyTorch, float64
// expectations, docs/contracts.md section 3's 1e-4 gradient tolerance) through both attention
// kernels, and finite differences on a GQA cross-attention layer with a causal mask.
#include <gtest/gtest.h>

#include <cctype>

#include "qkv/nn/multihead_attention.hpp"
#include "support/finite_difference.hpp"
#include "support/golden.hpp"
#include "support/golden_nn.hpp"
#include "support/printers.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

using testing::golden_case;

tensor concat(const std::vector<const tensor*>& parts) {
  std::vector<float> data;
  for (const tensor* t : parts) data.insert(data.end(), t->values().begin(), t->values().end());
  const auto n = static_cast<int64_t>(data.size());  // before data is moved from
  return tensor({n}, std::move(data));
}

void expect_grad(const golden_case& c, const std::string& name, const tensor& actual) {
  const tensor expected = c.expected(name + "_float64");
  ASSERT_EQ(actual.numel(), expected.numel()) << name;
  const tensor flat = expected.reshaped({expected.numel()});
  EXPECT_LE(testing::max_abs_diff(actual.reshaped({actual.numel()}), flat),
            testing::golden_tolerance(c, flat, 1e-4))
      << c.id << ": " << name;
}

class GoldenMhaGrad : public ::testing::TestWithParam<std::tuple<golden_case, sdpa_impl>> {};

TEST_P(GoldenMhaGrad, GradientsMatchPyTorchFloat64) {
  const auto& [c, impl] = GetParam();
  const auto mha = testing::load_golden_module<multihead_attention>(
      c, c.data()["params"]["num_heads"].get<int64_t>());
  mha_options o;
  o.run.impl = impl;
  o.masks = testing::golden_masks(c, "attn_mask", "key_padding_mask");
  const tensor query = c.input("query");
  const bool self = !c.has_input("key");
  const tensor key = self ? query : c.input("key"), value = self ? query : c.input("value");
  const mha_result r = mha.forward(query, key, value, o);
  mha_grads g = mha.make_grads();
  const mha_input_grads d = mha.backward(query, key, value, r, c.input("G"), g, o);

  if (self) {
    tensor dx(query.shape());
    for (int64_t i = 0; i < dx.numel(); ++i) dx[i] = d.query[i] + d.key[i] + d.value[i];
    expect_grad(c, "d_x", dx);
    // The same tensor as query, key and value: Q, K, V projected at once, dx from one product.
    const mha_result stacked = mha.forward(query, query, query, o);
    ASSERT_EQ(stacked.qkv.rank(), 3);
    mha_grads gs = mha.make_grads();
    expect_grad(c, "d_x", mha.backward_self(query, stacked, c.input("G"), gs, o).query);
    expect_grad(c, "d_in_proj_weight", concat({&gs.q.weight, &gs.k.weight, &gs.v.weight}));
    expect_grad(c, "d_out_proj_weight", gs.out.weight);
    if (c.has_expected("d_in_proj_bias_float64"))
      expect_grad(c, "d_in_proj_bias", concat({&*gs.q.bias, &*gs.k.bias, &*gs.v.bias}));
  } else {
    expect_grad(c, "d_query", d.query);
    expect_grad(c, "d_key", d.key);
    expect_grad(c, "d_value", d.value);
  }
  expect_grad(c, "d_in_proj_weight", concat({&g.q.weight, &g.k.weight, &g.v.weight}));
  expect_grad(c, "d_out_proj_weight", g.out.weight);
  if (c.has_expected("d_in_proj_bias_float64")) {
    expect_grad(c, "d_in_proj_bias", concat({&*g.q.bias, &*g.k.bias, &*g.v.bias}));
    expect_grad(c, "d_out_proj_bias", *g.out.bias);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Golden, GoldenMhaGrad,
    ::testing::Combine(::testing::ValuesIn(testing::load_golden("mha_grad")),
                       ::testing::Values(sdpa_impl::reference, sdpa_impl::fused)),
    [](const auto& info) {
      return testing::test_name(
          std::get<0>(info.param).id +
          (std::get<1>(info.param) == sdpa_impl::reference ? "_reference" : "_fused"));
    });

TEST(MhaGrad, FiniteDifferencesGqaCrossCausal) {
  std::mt19937_64 rng(7);
  const multihead_attention mha(
      {.embed_dim = 12, .num_heads = 4, .kv_heads = 2, .kdim = 5, .vdim = 7}, rng);
  multihead_attention m = mha;
  tensor query = testing::random_tensor({2, 3, 12}, rng),
         key = testing::random_tensor({2, 5, 5}, rng),
         value = testing::random_tensor({2, 5, 7}, rng);
  const tensor G = testing::random_tensor({2, 3, 12}, rng);
  mha_options o;
  o.masks.is_causal = true;
  o.run.impl = sdpa_impl::reference;
  const auto loss = [&] { return testing::dot(m.forward(query, key, value, o).out, G); };
  mha_grads g = m.make_grads();
  const mha_input_grads d = m.backward(query, key, value, m.forward(query, key, value, o), G, g, o);
  EXPECT_LE(testing::max_finite_difference_error(query, d.query, loss), 2e-3);
  EXPECT_LE(testing::max_finite_difference_error(key, d.key, loss), 2e-3);
  EXPECT_LE(testing::max_finite_difference_error(value, d.value, loss), 2e-3);
  for (const parameter& p : m.parameters("", g))
    EXPECT_LE(testing::max_finite_difference_error(*p.value, *p.grad, loss), 2e-3) << p.name;
}

}  // namespace
}  // namespace qkv::nn
