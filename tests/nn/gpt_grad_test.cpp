// The GPT model's backward (and so LayerNorm, GELU, the embeddings, the FFN, residual dropout
// and the MHA inside it) by finite differences of the summed cross-entropy over every parameter
// tensor; and its KV-cache decoding against the full forward pass.
#include <gtest/gtest.h>

#include <cmath>

#include "qkv/error.hpp"
#include "qkv/nn/cross_entropy.hpp"
#include "qkv/nn/gpt.hpp"
#include "support/finite_difference.hpp"
#include "support/golden.hpp"

namespace qkv::nn {
namespace {

const gpt_config tiny{.vocab = 7, .context = 6, .embed = 8, .heads = 2, .layers = 2, .dropout = 0};

struct toy_batch {
  std::vector<int32_t> x, y;
};
toy_batch toy(int64_t B, int64_t T) {
  toy_batch b;
  for (int64_t i = 0; i < B * T; ++i) {
    b.x.push_back(static_cast<int32_t>((i * 5 + 3) % 7));
    b.y.push_back(static_cast<int32_t>((i * 3 + 1) % 7));
  }
  return b;
}

void check_gradients(float dropout, sdpa_impl impl, float attention_dropout = 0.0f) {
  gpt_config config = tiny;
  config.dropout = dropout;
  config.attention_dropout = attention_dropout;
  std::mt19937_64 rng(11);
  gpt model(config, rng);
  const int64_t B = 2, T = 5, M = B * T;
  const toy_batch b = toy(B, T);
  const gpt_step step{.training = true, .seed = 5, .step = 3, .run = {.impl = impl, .threads = 1}};
  // The summed (not mean) loss, so that gradients are O(1) and the tolerance is absolute. The
  // residual stream starts at the embeddings' scale (std ~0.03), where LayerNorm is strongly
  // curved: a step of 1e-3 keeps the central difference's O(h²) error below the tolerance.
  const auto loss = [&] { return M * cross_entropy(model.forward(b.x, B, T, step), b.y).loss; };
  std::shared_ptr<gpt_activations> act;
  const cross_entropy_result ce = cross_entropy(model.forward(b.x, B, T, step, &act), b.y);
  tensor dlogits = ce.dlogits;
  for (float& v : dlogits.values()) v *= static_cast<float>(M);
  model.zero_grads();
  model.backward(*act, dlogits);
  for (const parameter& p : model.parameters())
    EXPECT_LE(testing::max_finite_difference_error(*p.value, *p.grad, loss, 1e-3f, 24), 3e-3)
        << p.name << " (dropout " << dropout << ", attention dropout " << attention_dropout << ")";
}

TEST(GptGrad, FiniteDifferencesEveryParameter) {
  check_gradients(0.0f, sdpa_impl::reference);
}
TEST(GptGrad, FiniteDifferencesWithDropoutAndFusedAttention) {
  check_gradients(0.25f, sdpa_impl::fused);
}
TEST(GptGrad, FiniteDifferencesWithAttentionDropout) {
  check_gradients(0.0f, sdpa_impl::reference, 0.3f);
  check_gradients(0.1f, sdpa_impl::fused, 0.3f);
}

// Attention dropout changes the training forward (its masks differ per layer and step) and
// leaves inference alone.
TEST(GptGrad, AttentionDropoutOnlyInTrainingAndPerStep) {
  gpt_config config = tiny;
  config.attention_dropout = 0.5f;
  std::mt19937_64 rng(11), rng2(11);
  const gpt dropped(config, rng), plain(tiny, rng2);
  const toy_batch b = toy(1, 6);
  const auto logits = [&](const gpt& m, bool training, uint64_t step) {
    return m.forward(b.x, 1, 6, gpt_step{.training = training, .seed = 5, .step = step});
  };
  EXPECT_EQ(testing::max_abs_diff(logits(dropped, false, 0), logits(plain, false, 0)), 0.0);
  EXPECT_GT(testing::max_abs_diff(logits(dropped, true, 0), logits(plain, true, 0)), 1e-4);
  EXPECT_GT(testing::max_abs_diff(logits(dropped, true, 0), logits(dropped, true, 1)), 1e-4);
  EXPECT_EQ(testing::max_abs_diff(logits(dropped, true, 1), logits(dropped, true, 1)), 0.0);
  config.attention_dropout = 1.0f;
  EXPECT_THROW(gpt(config, rng), error);
}

TEST(GptGrad, SecondBackwardDoublesGradients) {
  std::mt19937_64 rng(2);
  gpt model(tiny, rng);
  const toy_batch b = toy(1, 6);
  std::shared_ptr<gpt_activations> act;
  const tensor dlogits = cross_entropy(model.forward(b.x, 1, 6, {}, &act), b.y).dlogits;
  model.zero_grads();
  model.backward(*act, dlogits);
  const tensor once = *model.parameters()[0].grad;
  model.backward(*act, dlogits);
  for (int64_t i = 0; i < once.numel(); ++i)
    EXPECT_FLOAT_EQ((*model.parameters()[0].grad)[i], 2 * once[i]);
}

TEST(GptDecode, KvCacheStepsEqualTheFullForward) {
  std::mt19937_64 rng(9);
  const gpt model(tiny, rng);
  const std::vector<int32_t> tokens{3, 1, 4, 1, 5, 6};
  const tensor full = model.forward(tokens, 1, 6, {});
  gpt_kv_cache cache;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::vector<float> logits = model.decode_step(tokens[t], cache);
    for (int64_t v = 0; v < tiny.vocab; ++v)
      EXPECT_NEAR(logits[static_cast<size_t>(v)], full[static_cast<int64_t>(t) * tiny.vocab + v],
                  1e-5)
          << "position " << t;
  }
  EXPECT_THROW(model.decode_step(0, cache), error);  // the context is full
}

TEST(Gpt, SaveLoadRoundTripAndInputChecks) {
  std::mt19937_64 rng(1);
  const gpt model(tiny, rng);
  state_dict dict;
  model.save(dict);
  EXPECT_TRUE(dict.count("h.1.attn.in_proj_weight"));
  state_dict_reader reader(dict, "");
  const gpt loaded = gpt::load(reader, tiny.heads);
  reader.finish();
  const std::vector<int32_t> tokens{1, 2, 3};
  const tensor a = model.forward(tokens, 1, 3, {}), b = loaded.forward(tokens, 1, 3, {});
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a[i], b[i]);
  EXPECT_THROW(model.forward({1, 2, 9}, 1, 3, {}), error);                   // id >= vocab
  EXPECT_THROW(model.forward(std::vector<int32_t>(7, 0), 1, 7, {}), error);  // T > context
}

}  // namespace
}  // namespace qkv::nn
