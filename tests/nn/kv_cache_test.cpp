// The KV cache: N one-token decoding steps equal the full causal pass, with the score modifiers
// too; chunked prefill then steps too; the cache is read in place (GQA included); a full cache is
// a clear error.
#include "qkv/nn/kv_cache.hpp"

#include <gtest/gtest.h>

#include "qkv/error.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

// Rows [begin, begin + n) of x [B,N,E].
tensor tokens(const tensor& x, int64_t begin, int64_t n) {
  const int64_t B = x.size(0), N = x.size(1), E = x.size(2);
  tensor out({B, n, E});
  for (int64_t b = 0; b < B; ++b)
    std::copy(x.data() + (b * N + begin) * E, x.data() + (b * N + begin + n) * E,
              out.data() + b * n * E);
  return out;
}

// Decodes x [B,N,E] in chunks of the given sizes and assembles the outputs into [B,N,E].
tensor decode(const multihead_attention& mha, const tensor& x, const std::vector<int64_t>& chunks,
              const mha_options& options) {
  const int64_t B = x.size(0), N = x.size(1), E = x.size(2);
  kv_cache cache = mha.make_cache(B, N);
  tensor out({B, N, E});
  int64_t at = 0;
  for (int64_t n : chunks) {
    const tensor y = mha.forward_step(tokens(x, at, n), cache, options).out;
    for (int64_t b = 0; b < B; ++b)
      std::copy(y.data() + b * n * E, y.data() + (b + 1) * n * E, out.data() + (b * N + at) * E);
    at += n;
  }
  EXPECT_EQ(cache.length(), N);
  return out;
}

TEST(KvCache, OneTokenStepsEqualTheFullCausalPass) {
  std::mt19937_64 rng(21);
  for (const mha_config& config : {mha_config{.embed_dim = 16, .num_heads = 4},
                                   mha_config{.embed_dim = 24, .num_heads = 6, .kv_heads = 2}}) {
    const multihead_attention mha(config, rng);
    const int64_t N = 37;
    const tensor x = testing::random_tensor({2, N, config.embed_dim}, rng);
    const tensor full =
        mha.forward(x, x, x, {.masks = {.is_causal = true}, .run = {.impl = sdpa_impl::reference}})
            .out;
    const double tol = 1e-5 * std::max(1.0, max_abs(full));
    for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::auto_select}) {
      EXPECT_LE(
          max_abs_diff(decode(mha, x, std::vector<int64_t>(N, 1), {.run = {.impl = impl}}), full),
          tol);
      // A prefill of 10 tokens, then single steps, then a chunk of 3.
      std::vector<int64_t> chunks = {10};
      chunks.insert(chunks.end(), 24, 1);
      chunks.push_back(3);
      EXPECT_LE(max_abs_diff(decode(mha, x, chunks, {.run = {.impl = impl}}), full), tol);
    }
  }
}

// softcap, ALiBi, a window narrower than the sequence and sinks, for 4 heads: one-token steps
// (whose windowed steps read only the window's cached keys) equal the full windowed pass.
TEST(KvCache, WindowedStepsWithEveryModifierEqualTheFullPass) {
  std::mt19937_64 rng(32);
  const multihead_attention mha({.embed_dim = 16, .num_heads = 4, .kv_heads = 2}, rng);
  const int64_t N = 41;
  const tensor x = testing::random_tensor({2, N, 16}, rng);
  mha_options o;
  o.modifiers.window = attention_window{4, 0};
  o.modifiers.softcap = 4.0f;
  o.modifiers.alibi_slopes = tensor({4}, {0.5f, 0.25f, 0.125f, 0.0625f});
  o.modifiers.sinks = testing::random_tensor({4}, rng);
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused}) {
    o.run.impl = impl;
    mha_options full_o = o;
    full_o.masks.is_causal = true;
    const tensor full = mha.forward(x, x, x, full_o).out;
    const double tol = 2e-5 * std::max(1.0, max_abs(full));
    EXPECT_LE(max_abs_diff(decode(mha, x, std::vector<int64_t>(N, 1), o), full), tol);
    std::vector<int64_t> chunks = {9};  // a prefill, single steps, a chunk of 4
    chunks.insert(chunks.end(), N - 13, 1);
    chunks.push_back(4);
    EXPECT_LE(max_abs_diff(decode(mha, x, chunks, o), full), tol);
  }
}

TEST(KvCache, AFullCacheIsAClearErrorAndStaysUsable) {
  std::mt19937_64 rng(22);
  const multihead_attention mha({.embed_dim = 8, .num_heads = 2}, rng);
  kv_cache cache = mha.make_cache(1, 4);
  const tensor x = testing::random_tensor({1, 3, 8}, rng);
  mha.forward_step(x, cache);
  try {
    mha.forward_step(tokens(x, 0, 2), cache);
    ADD_FAILURE() << "no error";
  } catch (const error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("full"), std::string::npos) << what;
    EXPECT_NE(what.find("capacity 4"), std::string::npos) << what;
  }
  EXPECT_EQ(cache.length(), 3);
  EXPECT_THROW(mha.forward_step(tokens(x, 0, 1), cache, {.dropout_p = 0.1f}), error);  // decoding
  EXPECT_NO_THROW(mha.forward_step(tokens(x, 0, 1), cache));
  EXPECT_EQ(cache.length(), 4);
  cache.truncate(2);
  EXPECT_EQ(cache.length(), 2);
  EXPECT_THROW(cache.truncate(3), error);
  cache.clear();
  EXPECT_EQ(cache.length(), 0);
}

TEST(KvCache, RefusesMismatchedShapesAndQueriesWithoutKeys) {
  kv_cache cache(2, 2, 8, 4, 3);
  EXPECT_THROW(cache.append(tensor({2, 2, 1, 5}), tensor({2, 2, 1, 3})), error);
  EXPECT_THROW(cache.append(tensor({2, 2, 1, 4}), tensor({2, 2, 2, 3})), error);
  EXPECT_THROW(cache.attend(tensor({2, 2, 1, 4})), error);  // nothing cached yet
  cache.append(tensor({2, 2, 1, 4}), tensor({2, 2, 1, 3}));
  EXPECT_THROW(cache.attend(tensor({2, 3, 1, 4})), error);  // Hq not a multiple of Hkv
  EXPECT_EQ(cache.attend(tensor({2, 4, 1, 4})).out.shape(), (shape_t{2, 4, 1, 3}));
  EXPECT_THROW(kv_cache(1, 1, 0, 4, 4), error);
}

}  // namespace
}  // namespace qkv::nn
