// The backward of the Transformer encoder and decoder layers by finite differences of
// L = sum(out ⊙ G), over every parameter tensor and every input, in both norm orders, with ReLU
// and GELU, causal self-attention, key padding and (decoder) a memory mask.
#include <gtest/gtest.h>

#include <string>

#include "qkv/error.hpp"
#include "qkv/nn/transformer_decoder_layer.hpp"
#include "qkv/nn/transformer_encoder_layer.hpp"
#include "support/finite_difference.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

// A step of 1e-3 keeps the central difference's O(h²) error and the fp32 rounding of L (a sum
// of O(1) terms, about 1e-7 relative, divided by 2h) below the tolerance. A ReLU kink crossed by
// a step shows as a failure: with the encoder's seed 21 one hidden unit of the pre-norm ReLU
// case lies within reach of it (errors of 0.02-0.3 there, none with GELU), hence seed 23.
constexpr float step = 1e-3f;
constexpr double tolerance = 3e-3;

struct layer_case {
  bool norm_first;
  activation act;
  sdpa_impl impl;
};

std::string case_name(const layer_case& c) {
  return std::string(c.norm_first ? "pre" : "post") +
         (c.act == activation::relu ? "_relu" : "_gelu") + "_" + to_string(c.impl);
}

void PrintTo(const layer_case& c, std::ostream* os) {
  *os << case_name(c);
}

transformer_layer_config config_of(const layer_case& c) {
  return {
      .d_model = 8, .nhead = 2, .dim_feedforward = 12, .act = c.act, .norm_first = c.norm_first};
}

// Key padding [B,N]: the last key of batch 1 is padding.
bool_tensor padding(int64_t B, int64_t N) {
  bool_tensor m({B, N}, 0);
  m.at({B - 1, N - 1}) = 1;
  return m;
}

class TransformerLayerGrad : public ::testing::TestWithParam<layer_case> {};

TEST_P(TransformerLayerGrad, EncoderMatchesFiniteDifferences) {
  const layer_case& c = GetParam();
  std::mt19937_64 rng(23);
  transformer_encoder_layer layer(config_of(c), rng);
  const int64_t B = 2, S = 5;
  tensor src = testing::random_tensor({B, S, 8}, rng);
  const tensor G = testing::random_tensor({B, S, 8}, rng);
  const mha_masks masks{.key_padding_mask = padding(B, S), .is_causal = true};
  const run_options run{.impl = c.impl, .threads = 1};

  transformer_encoder_grads grads = layer.make_grads();
  const auto r = layer.forward(src, masks, run);
  const tensor dsrc = layer.backward(src, r, G, grads, masks, run);
  const auto loss = [&] { return testing::dot(layer.forward(src, masks, run).out, G); };
  EXPECT_LE(testing::max_finite_difference_error(src, dsrc, loss, step), tolerance) << "src";
  for (const parameter& p : layer.parameters("", grads))
    EXPECT_LE(testing::max_finite_difference_error(*p.value, *p.grad, loss, step), tolerance)
        << p.name;
}

TEST_P(TransformerLayerGrad, DecoderMatchesFiniteDifferences) {
  const layer_case& c = GetParam();
  std::mt19937_64 rng(22);
  transformer_decoder_layer layer(config_of(c), rng);
  const int64_t B = 2, T = 4, S = 6;
  tensor tgt = testing::random_tensor({B, T, 8}, rng);
  tensor memory = testing::random_tensor({B, S, 8}, rng);
  const tensor G = testing::random_tensor({B, T, 8}, rng);
  const mha_masks tgt_masks{.key_padding_mask = padding(B, T), .is_causal = true};
  // memory_mask [T,S]: query i may not see memory position (i + 2) % S; plus memory padding.
  bool_tensor memory_mask({T, S}, 0);
  for (int64_t i = 0; i < T; ++i) memory_mask.at({i, (i + 2) % S}) = 1;
  const mha_masks memory_masks{.key_padding_mask = padding(B, S), .attn_mask = memory_mask};
  const run_options run{.impl = c.impl, .threads = 1};

  transformer_decoder_grads grads = layer.make_grads();
  const auto r = layer.forward(tgt, memory, tgt_masks, memory_masks, run);
  const decoder_input_grads d =
      layer.backward(tgt, memory, r, G, grads, tgt_masks, memory_masks, run);
  const auto loss = [&] {
    return testing::dot(layer.forward(tgt, memory, tgt_masks, memory_masks, run).out, G);
  };
  EXPECT_LE(testing::max_finite_difference_error(tgt, d.tgt, loss, step), tolerance) << "tgt";
  EXPECT_LE(testing::max_finite_difference_error(memory, d.memory, loss, step), tolerance)
      << "memory";
  for (const parameter& p : layer.parameters("", grads))
    EXPECT_LE(testing::max_finite_difference_error(*p.value, *p.grad, loss, step), tolerance)
        << p.name;
}

TEST(TransformerLayerGrad, GradOutOfAnotherShapeIsAnError) {
  std::mt19937_64 rng(3);
  transformer_encoder_layer layer(config_of({false, activation::relu, sdpa_impl::reference}), rng);
  const tensor src = testing::random_tensor({1, 3, 8}, rng);
  transformer_encoder_grads grads = layer.make_grads();
  const auto r = layer.forward(src);
  EXPECT_THROW(layer.backward(src, r, tensor({1, 4, 8}), grads), error);
}

INSTANTIATE_TEST_SUITE_P(
    NormOrders, TransformerLayerGrad,
    ::testing::Values(layer_case{false, activation::relu, sdpa_impl::reference},
                      layer_case{true, activation::relu, sdpa_impl::reference},
                      layer_case{false, activation::gelu, sdpa_impl::reference},
                      layer_case{true, activation::gelu, sdpa_impl::fused}),
    [](const auto& info) { return case_name(info.param); });

}  // namespace
}  // namespace qkv::nn
