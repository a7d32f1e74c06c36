// The score modifiers through nn::multihead_attention: the fused and reference kernels agree with
// every modifier set (the windowed KV-cache decode is in kv_cache_test.cpp), the sinks' gradient
// passes finite differences, and the backward stays exact under additive masks of
// -1e9 and finfo(float32).min (the layer keeps the softmax's row statistics for its backward).
#include <gtest/gtest.h>

#include <limits>

#include "qkv/nn/multihead_attention.hpp"
#include "support/finite_difference.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

// softcap, ALiBi, a window and sinks together, for H heads.
mha_options all_modifiers(int64_t H, std::mt19937_64& rng) {
  mha_options o;
  o.modifiers.window = attention_window{4, 0};
  o.modifiers.softcap = 4.0f;
  o.modifiers.alibi_slopes = testing::random_tensor({H}, rng);
  for (float& s : o.modifiers.alibi_slopes->values()) s = std::abs(s) * 0.25f;
  o.modifiers.sinks = testing::random_tensor({H}, rng);
  return o;
}

TEST(MhaModifiers, FusedEqualsReferenceAndTheModifiersChangeTheOutput) {
  std::mt19937_64 rng(31);
  const multihead_attention mha({.embed_dim = 24, .num_heads = 6, .kv_heads = 2}, rng);
  const tensor x = testing::random_tensor({2, 19, 24}, rng);
  mha_options o = all_modifiers(6, rng);
  o.masks.is_causal = true;
  o.run.impl = sdpa_impl::reference;
  const tensor reference = mha.forward(x, x, x, o).out;
  o.run.impl = sdpa_impl::fused;
  const tensor fused = mha.forward(x, x, x, o).out;
  EXPECT_LE(max_abs_diff(fused, reference), 2e-5 * std::max(1.0, max_abs(reference)));
  const tensor plain = mha.forward(x, x, x, {.masks = {.is_causal = true}}).out;
  EXPECT_GT(max_abs_diff(plain, reference), 1e-3);  // the modifiers reached the kernel
}

TEST(MhaModifiers, SinksGradientPassesFiniteDifferences) {
  std::mt19937_64 rng(33);
  const multihead_attention mha({.embed_dim = 12, .num_heads = 3}, rng);
  const tensor x = testing::random_tensor({2, 7, 12}, rng);
  const tensor G = testing::random_tensor({2, 7, 12}, rng);
  mha_options o = all_modifiers(3, rng);
  o.masks.is_causal = true;
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused}) {
    o.run.impl = impl;
    mha_grads g = mha.make_grads();
    const mha_input_grads d = mha.backward(x, x, x, mha.forward(x, x, x, o), G, g, o);
    ASSERT_EQ(d.sinks.shape(), (shape_t{3}));
    tensor& sinks = *o.modifiers.sinks;
    const auto loss = [&] { return testing::dot(mha.forward(x, x, x, o).out, G); };
    EXPECT_LE(testing::max_finite_difference_error(sinks, d.sinks, loss), 2e-3);
  }
  // Without sinks there is no sinks gradient.
  mha_grads g = mha.make_grads();
  const mha_options plain{.masks = {.is_causal = true}};
  EXPECT_EQ(mha.backward(x, x, x, mha.forward(x, x, x, plain), G, g, plain).sinks.numel(), 0);
}

TEST(MhaModifiers, BackwardUnderHugeAdditiveMasksEqualsTheReference) {
  // W_Q = 0 makes every score 0, so that fp32 and float64 agree on the softmax even when a mask
  // entry of -1e9 swallows the scores: rows of equal masked scores get the uniform softmax, and
  // the backward must recompute P = 1/Nk there, although lse = m + log(Nk) rounds to m. The keys
  // and values are random, so dV and the projections' gradients are not.
  std::mt19937_64 rng(34);
  const int64_t B = 2, N = 11, E = 16;
  const multihead_attention mha(linear(tensor({E, E})), linear(E, E, false, rng),
                                linear(E, E, false, rng), linear(E, E, true, rng), 4);
  const tensor x = testing::random_tensor({B, N, E}, rng);
  const tensor G = testing::random_tensor({B, N, E}, rng);
  for (float fill : {-1e9f, -3e38f, std::numeric_limits<float>::lowest()}) {
    // Every entry, and then every third row (the rows of a padded query).
    for (int64_t every : {1, 3}) {
      tensor mask({N, N});
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) mask[i * N + j] = i % every == 0 ? fill : 0.0f;
      mha_options o{.masks = {.attn_mask_additive = mask}};
      o.run.impl = sdpa_impl::reference;
      mha_grads g_ref = mha.make_grads();
      const mha_input_grads ref = mha.backward(x, x, x, mha.forward(x, x, x, o), G, g_ref, o);
      o.run.impl = sdpa_impl::fused;
      mha_grads g_fused = mha.make_grads();
      const mha_input_grads fused = mha.backward(x, x, x, mha.forward(x, x, x, o), G, g_fused, o);
      const auto expect_close = [&](const char* name, const tensor& got, const tensor& want) {
        EXPECT_LE(max_abs_diff(got, want), 1e-4 * std::max(1.0, max_abs(want)))
            << name << " under a mask of " << fill << " on every " << every << " row(s)";
      };
      expect_close("d query", fused.query, ref.query);
      expect_close("d value", fused.value, ref.value);
      expect_close("d W_Q", g_fused.q.weight, g_ref.q.weight);
      expect_close("d W_V", g_fused.v.weight, g_ref.v.weight);
      EXPECT_GT(max_abs(g_ref.q.weight), 1e-3);  // the check compares something
    }
  }
}

}  // namespace
}  // namespace qkv::nn
