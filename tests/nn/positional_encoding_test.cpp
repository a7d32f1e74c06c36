// Embedding lookup, the sinusoidal encoding ("Attention Is All You Need" 3.5) and RoPE against
// float64 formulas; RoPE's relative-position property; RoPE with the KV cache.
#include "qkv/nn/positional_encoding.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "qkv/error.hpp"
#include "qkv/nn/embedding.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

using testing::max_abs_diff;

TEST(Embedding, LooksUpRowsAndNamesABadId) {
  std::mt19937_64 rng(31);
  const embedding emb(10, 3, rng);
  const std::vector<int64_t> ids = {4, 0, 9, 4, 7, 1};
  const tensor out = emb.forward(ids, {2, 3});
  ASSERT_EQ(out.shape(), (shape_t{2, 3, 3}));
  for (size_t n = 0; n < ids.size(); ++n)
    for (int64_t e = 0; e < 3; ++e)
      EXPECT_EQ(out[int64_t(n) * 3 + e], emb.weight()[ids[n] * 3 + e]);
  const std::vector<int64_t> bad = {1, 10};
  try {
    emb.forward(bad, {2});
    ADD_FAILURE() << "no error";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("id 10"), std::string::npos) << e.what();
  }
  state_dict dict;
  emb.save(dict, "embed.");
  state_dict_reader reader(dict, "");
  EXPECT_EQ(max_abs_diff(embedding::load(reader, "embed.").weight(), emb.weight()), 0.0);
}

TEST(SinusoidalEncoding, MatchesThePaperFormulaWithOddDimsAndOffsets) {
  for (int64_t E : {1, 7, 64}) {
    const tensor pe = sinusoidal_positional_encoding(50, E, 3);
    for (int64_t n = 0; n < 50; ++n)
      for (int64_t i = 0; 2 * i < E; ++i) {
        const double angle = (n + 3) / std::pow(10000.0, 2.0 * i / E);
        EXPECT_NEAR(pe.at({n, 2 * i}), std::sin(angle), 1e-6);
        if (2 * i + 1 < E) {
          EXPECT_NEAR(pe.at({n, 2 * i + 1}), std::cos(angle), 1e-6);
        }
      }
  }
  tensor x({2, 4, 6}, 1.0f);
  const tensor y = add_positional_encoding(x, 5);
  const tensor pe = sinusoidal_positional_encoding(4, 6, 5);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t n = 0; n < 24; ++n) EXPECT_EQ(y[b * 24 + n], 1.0f + pe[n]);
}

// q·k with RoPE applied at positions m and n.
double rotated_dot(const tensor& q, const tensor& k, int64_t m, int64_t n, const rope_config& c) {
  const tensor qr = apply_rope(q, m, c), kr = apply_rope(k, n, c);
  double dot = 0;
  for (int64_t i = 0; i < q.numel(); ++i) dot += double(qr[i]) * kr[i];
  return dot;
}

TEST(Rope, MatchesTheRotationFormulaForBothLayouts) {
  std::mt19937_64 rng(32);
  const tensor x = testing::random_tensor({1, 2, 5, 8}, rng);
  for (rope_layout layout : {rope_layout::half, rope_layout::interleaved}) {
    const tensor y = apply_rope(x, 7, {.base = 10000.0f, .layout = layout});
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t n = 0; n < 5; ++n)
        for (int64_t i = 0; i < 4; ++i) {
          const double angle = (7 + n) * std::pow(10000.0, -2.0 * i / 8);
          const int64_t a = layout == rope_layout::half ? i : 2 * i;
          const int64_t b = layout == rope_layout::half ? i + 4 : 2 * i + 1;
          const double xa = x.at({0, h, n, a}), xb = x.at({0, h, n, b});
          EXPECT_NEAR(y.at({0, h, n, a}), xa * std::cos(angle) - xb * std::sin(angle), 1e-5);
          EXPECT_NEAR(y.at({0, h, n, b}), xb * std::cos(angle) + xa * std::sin(angle), 1e-5);
        }
  }
  EXPECT_THROW(apply_rope(tensor({1, 1, 2, 3}), 0), error);
}

TEST(Rope, ScoresDependOnlyOnTheRelativePosition) {
  std::mt19937_64 rng(33);
  const tensor q = testing::random_tensor({1, 1, 1, 16}, rng),
               k = testing::random_tensor({1, 1, 1, 16}, rng);
  for (rope_layout layout : {rope_layout::half, rope_layout::interleaved}) {
    const rope_config c{.layout = layout};
    const double at_start = rotated_dot(q, k, 5, 2, c);
    EXPECT_NEAR(rotated_dot(q, k, 105, 102, c), at_start, 1e-4);
    EXPECT_GT(std::fabs(rotated_dot(q, k, 5, 4, c) - at_start), 1e-3);  // and does depend on it
  }
}

TEST(Rope, KvCacheStepsWithRopeEqualTheFullCausalPass) {
  std::mt19937_64 rng(34);
  const multihead_attention mha({.embed_dim = 16, .num_heads = 2, .kv_heads = 1}, rng);
  const int64_t N = 9;
  const tensor x = testing::random_tensor({1, N, 16}, rng);
  mha_options o{.masks = {.is_causal = true}, .rope = rope_config{}};
  const tensor full = mha.forward(x, x, x, o).out;
  kv_cache cache = mha.make_cache(1, N);
  mha_options step{.rope = rope_config{}};
  for (int64_t n = 0; n < N; ++n) {
    tensor token({1, 1, 16});
    std::copy(x.data() + n * 16, x.data() + (n + 1) * 16, token.data());
    const tensor y = mha.forward_step(token, cache, step).out;
    for (int64_t e = 0; e < 16; ++e) EXPECT_NEAR(y[e], full[n * 16 + e], 1e-5) << n;
  }
}

}  // namespace
}  // namespace qkv::nn
