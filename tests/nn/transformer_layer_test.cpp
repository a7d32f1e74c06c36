// The Transformer encoder and decoder layers against PyTorch (every golden encoder_layer and
// decoder_layer case: pre/post-norm, relu/gelu, masks, eps), and LayerNorm and FeedForward
// against float64 loops written from their formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "qkv/error.hpp"
#include "qkv/nn/transformer_decoder_layer.hpp"
#include "qkv/nn/transformer_encoder_layer.hpp"
#include "support/golden.hpp"
#include "support/golden_nn.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

using testing::golden_case;
using testing::golden_tolerance;
using testing::max_abs_diff;

transformer_layer_config golden_config(const golden_case& c) {
  const auto& p = c.data().at("params");
  transformer_layer_config config;
  config.nhead = p.at("nhead").get<int64_t>();
  config.act = parse_activation(p.at("activation").get<std::string>());
  config.norm_first = p.at("norm_first").get<bool>();
  config.layer_norm_eps = p.at("layer_norm_eps").get<float>();
  return config;
}

// The golden masks named `<prefix>mask` and `<prefix>key_padding_mask`.
mha_masks layer_masks(const golden_case& c, const std::string& prefix) {
  return testing::golden_masks(c, prefix + "mask", prefix + "key_padding_mask");
}

class GoldenEncoderLayer : public ::testing::TestWithParam<golden_case> {};

TEST_P(GoldenEncoderLayer, MatchesPyTorchFloat64) {
  const golden_case& c = GetParam();
  const auto layer = testing::load_golden_module<transformer_encoder_layer>(c, golden_config(c));
  const tensor out = layer.forward(c.input("src"), layer_masks(c, "src_")).out;
  const tensor expected = c.expected("out_float64");
  EXPECT_LE(max_abs_diff(out, expected), golden_tolerance(c, expected, 1e-5)) << c.id;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenEncoderLayer,
                         ::testing::ValuesIn(testing::load_golden("encoder_layer")),
                         testing::golden_case_name);

class GoldenDecoderLayer : public ::testing::TestWithParam<golden_case> {};

TEST_P(GoldenDecoderLayer, MatchesPyTorchFloat64) {
  const golden_case& c = GetParam();
  const auto layer = testing::load_golden_module<transformer_decoder_layer>(c, golden_config(c));
  const tensor out = layer
                         .forward(c.input("tgt"), c.input("memory"), layer_masks(c, "tgt_"),
                                  layer_masks(c, "memory_"))
                         .out;
  const tensor expected = c.expected("out_float64");
  EXPECT_LE(max_abs_diff(out, expected), golden_tolerance(c, expected, 1e-5)) << c.id;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenDecoderLayer,
                         ::testing::ValuesIn(testing::load_golden("decoder_layer")),
                         testing::golden_case_name);

TEST(TransformerLayers, EpsMattersInTheEpsGoldenCases) {
  // A layer that ignored layer_norm_eps would fail the *_eps1e-6 cases: check that 1e-5 does.
  for (const golden_case& c : testing::load_golden("encoder_layer")) {
    if (c.id.find("eps1e-6") == std::string::npos) continue;
    transformer_layer_config config = golden_config(c);
    config.layer_norm_eps = 1e-5f;
    const tensor out = testing::load_golden_module<transformer_encoder_layer>(c, config)
                           .forward(c.input("src"), layer_masks(c, "src_"))
                           .out;
    EXPECT_GT(max_abs_diff(out, c.expected("out_float64")), 1e-3) << c.id;
  }
}

TEST(TransformerLayers, SaveLoadRoundTripAndStrictNames) {
  std::mt19937_64 rng(4);
  const transformer_layer_config config{.d_model = 8, .nhead = 2, .dim_feedforward = 12};
  const transformer_decoder_layer a(config, rng);
  state_dict dict;
  a.save(dict, "layers.0.");
  EXPECT_EQ(dict.size(), 18u);  // PyTorch's TransformerDecoderLayer state_dict has 18 tensors
  state_dict_reader reader(dict, "");
  const auto b = transformer_decoder_layer::load(reader, "layers.0.", config);
  reader.finish();
  const tensor tgt = testing::random_tensor({2, 3, 8}, rng),
               mem = testing::random_tensor({2, 5, 8}, rng);
  EXPECT_EQ(max_abs_diff(a.forward(tgt, mem).out, b.forward(tgt, mem).out), 0.0);
  // An encoder refuses a decoder's state_dict: multihead_attn.* and norm3.* are unexpected.
  state_dict_reader enc_reader(dict, "dec.safetensors");
  transformer_encoder_layer::load(enc_reader, "layers.0.", config);
  try {
    enc_reader.finish();
    ADD_FAILURE() << "no error";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.norm3.weight"), std::string::npos) << e.what();
  }
}

TEST(TransformerLayers, MaskErrorsNameTheLayerArgument) {
  std::mt19937_64 rng(6);
  const transformer_encoder_layer layer({.d_model = 8, .nhead = 2, .dim_feedforward = 4}, rng);
  mha_masks m;
  m.key_padding_mask = bool_tensor({2, 4});
  try {
    layer.forward(tensor({2, 3, 8}), m);
    ADD_FAILURE() << "no error";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("src_key_padding_mask"), std::string::npos) << e.what();
  }
  EXPECT_THROW(layer.forward(tensor({2, 3, 7})), error);
}

TEST(LayerNorm, MatchesFloat64FormulaOnAwkwardSizes) {
  std::mt19937_64 rng(8);
  for (int64_t E : {1, 3, 59, 97}) {
    const tensor w = testing::random_tensor({E}, rng), b = testing::random_tensor({E}, rng);
    const layer_norm ln(w, b, 1e-3f);
    // Offset rows: a large mean relative to the spread stresses the variance computation.
    tensor x = testing::random_tensor({5, E}, rng);
    for (float& v : x.values()) v += 100.0f;
    const tensor y = ln.forward(x);
    for (int64_t r = 0; r < 5; ++r) {
      long double mean = 0, var = 0;
      for (int64_t e = 0; e < E; ++e) mean += x[r * E + e];
      mean /= E;
      for (int64_t e = 0; e < E; ++e) var += (x[r * E + e] - mean) * (x[r * E + e] - mean);
      var /= E;
      for (int64_t e = 0; e < E; ++e) {
        const double expect = (x[r * E + e] - mean) / std::sqrt(var + 1e-3L) * w[e] + b[e];
        EXPECT_NEAR(y[r * E + e], expect, 1e-5 * std::max(1.0, std::fabs(expect))) << E;
      }
    }
  }
  EXPECT_THROW(layer_norm(tensor({3}), tensor({4})), error);
  EXPECT_THROW(layer_norm(3, 0.0f), error);
}

TEST(FeedForward, MatchesFloat64LoopsForReluAndErfGelu) {
  std::mt19937_64 rng(9);
  const int64_t E = 7, F = 13;
  for (activation act : {activation::relu, activation::gelu}) {
    const feed_forward ffn(E, F, act, rng);
    state_dict dict;
    ffn.save(dict, "");
    const tensor x = testing::random_tensor({2, 3, E}, rng);
    const tensor y = ffn.forward(x);
    const tensor &w1 = dict["linear1.weight"], &b1 = dict["linear1.bias"];
    const tensor &w2 = dict["linear2.weight"], &b2 = dict["linear2.bias"];
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t o = 0; o < E; ++o) {
        double s = b2[o];
        for (int64_t f = 0; f < F; ++f) {
          double h = b1[f];
          for (int64_t e = 0; e < E; ++e) h += double(x[r * E + e]) * w1[f * E + e];
          h = act == activation::relu ? std::max(h, 0.0)
                                      : 0.5 * h * (1.0 + std::erf(h / std::sqrt(2.0)));
          s += h * w2[o * F + f];
        }
        EXPECT_NEAR(y[r * E + o], s, 1e-5 * std::max(1.0, std::fabs(s)));
      }
  }
  EXPECT_THROW(parse_activation("tanh"), error);
}

}  // namespace
}  // namespace qkv::nn
