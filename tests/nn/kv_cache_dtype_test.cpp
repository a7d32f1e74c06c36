// The KV cache in f16 and bf16: appending rounds each value to the nearest (ties to even), the
// cache holds half the bytes of an f32 one (counted and measured), and a decode through it
// equals the full pass on the same rounded keys and values.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "bench/timing.hpp"
#include "qkv/error.hpp"
#include "qkv/half.hpp"
#include "qkv/nn/gpt.hpp"
#include "qkv/nn/kv_cache.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "qkv/stored_tensor.hpp"
#include "support/golden.hpp"
#include "support/naive_attention.hpp"
#include "support/random.hpp"

namespace qkv::nn {
namespace {

constexpr dtype half_types[] = {dtype::f16, dtype::bf16};

uint16_t rounded(dtype type, float x) {
  return type == dtype::f16 ? float_to_f16(x) : float_to_bf16(x);
}

// The 16-bit pattern at element [b, h, i, c] of a [B,H,N,f] view.
uint16_t bits_at(const tensor_view& view, int64_t b, int64_t h, int64_t i, int64_t c) {
  uint16_t x;
  std::memcpy(&x,
              static_cast<const uint16_t*>(view.data()) + b * view.stride(0) + h * view.stride(1) +
                  i * view.stride(2) + c * view.stride(3),
              sizeof x);
  return x;
}

TEST(KvCache16, AppendRoundsEachValueToTheNearestAndKeepsItsBits) {
  std::mt19937_64 rng(5);
  for (dtype type : half_types) {
    SCOPED_TRACE(to_string(type));
    kv_cache cache(2, 3, 9, 5, 4, type);
    EXPECT_EQ(cache.type(), type);
    // Keys as a strided view: [B,n,Hkv,d] read as [B,Hkv,n,d], as a projection's heads are.
    const tensor k_rows = testing::random_tensor({2, 7, 3, 5}, rng, 3.0f);
    const tensor_view k = tensor_view(k_rows).permuted({0, 2, 1, 3});
    const tensor v = testing::random_tensor({2, 3, 7, 4}, rng, 3.0f);
    cache.append(k.sliced(2, 0, 4), tensor_view(v).sliced(2, 0, 4));
    cache.append(k.sliced(2, 4, 3), tensor_view(v).sliced(2, 4, 3));
    ASSERT_EQ(cache.keys().type(), type);
    ASSERT_EQ(cache.keys().shape(), (shape_t{2, 3, 7, 5}));
    ASSERT_EQ(cache.values().shape(), (shape_t{2, 3, 7, 4}));
    int64_t mismatches = 0;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t i = 0; i < 7; ++i) {
          for (int64_t c = 0; c < 5; ++c)
            mismatches +=
                bits_at(cache.keys(), b, h, i, c) != rounded(type, k_rows.at({b, i, h, c}));
          for (int64_t c = 0; c < 4; ++c)
            mismatches += bits_at(cache.values(), b, h, i, c) != rounded(type, v.at({b, h, i, c}));
        }
    EXPECT_EQ(mismatches, 0);
    // Rolled back and appended again, position 1 holds the new values.
    cache.truncate(1);
    cache.append(k.sliced(2, 6, 1), tensor_view(v).sliced(2, 6, 1));
    EXPECT_EQ(cache.length(), 2);
    EXPECT_EQ(bits_at(cache.keys(), 1, 2, 1, 4), rounded(type, k_rows.at({1, 6, 2, 4})));
    EXPECT_EQ(bits_at(cache.values(), 1, 2, 1, 3), rounded(type, v.at({1, 2, 6, 3})));
  }
}

// x [B,N,F] rows [at, at + n) = y [B,n,F].
void put_rows(tensor& x, const tensor& y, int64_t at) {
  const int64_t B = x.size(0), N = x.size(1), F = x.size(2), n = y.size(1);
  for (int64_t b = 0; b < B; ++b)
    std::copy(y.data() + b * n * F, y.data() + (b + 1) * n * F, x.data() + (b * N + at) * F);
}
tensor rows(const tensor& x, int64_t at, int64_t n) {
  const int64_t B = x.size(0), N = x.size(1), F = x.size(2);
  tensor y({B, n, F});
  for (int64_t b = 0; b < B; ++b)
    std::copy(x.data() + (b * N + at) * F, x.data() + (b * N + at + n) * F, y.data() + b * n * F);
  return y;
}

// x [B,N,H·hd] (of any dtype) read as heads [B,H,N,hd].
tensor_view heads(const void* data, dtype type, const shape_t& x, int64_t H) {
  return tensor_view(data, type, {x[0], x[1], H, x[2] / H}).permuted({0, 2, 1, 3});
}

// x [B,H,N,f] positions [at, at + n) = y [B,H,n,f].
void put_positions(tensor& x, const tensor& y, int64_t at) {
  const int64_t BH = x.size(0) * x.size(1), N = x.size(2), f = x.size(3), n = y.size(2);
  for (int64_t bh = 0; bh < BH; ++bh)
    std::copy(y.data() + bh * n * f, y.data() + (bh + 1) * n * f, x.data() + (bh * N + at) * f);
}

// What a decode through a cache computed: the attention outputs [B,N,E], and the heads each step
// projected ([B,H,N,hd], [B,Hkv,N,hd] twice), assembled from the steps.
struct decoded {
  tensor concat, q, k, v;
};
decoded decode(const multihead_attention& mha, const tensor& x, const std::vector<int64_t>& chunks,
               const mha_options& options, dtype type) {
  const int64_t B = x.size(0), N = x.size(1), E = x.size(2);
  const int64_t H = mha.num_heads(), Hkv = mha.kv_heads(), hd = mha.head_dim();
  kv_cache cache = mha.make_cache(B, N, type);
  decoded out{tensor({B, N, E}), tensor({B, H, N, hd}), tensor({B, Hkv, N, hd}),
              tensor({B, Hkv, N, hd})};
  int64_t at = 0;
  for (int64_t n : chunks) {
    const mha_result r = mha.forward_step(rows(x, at, n), cache, options);
    put_rows(out.concat, r.concat, at);
    put_positions(out.q, r.q_heads().to_tensor(), at);
    put_positions(out.k, r.k_heads().to_tensor(), at);
    put_positions(out.v, r.v_heads().to_tensor(), at);
    at += n;
  }
  EXPECT_EQ(at, N);
  return out;
}

// A decode through an f16 or bf16 cache (one-token steps; a prefill, steps and a chunk) equals
// the full causal pass on the same keys and values rounded to that type: the reference kernel's
// float64 attention on the rounded K/V, within 1e-5 for the reference kernel and within the fused
// rule (docs/contracts.md, section 3: max(2e-5·max(1, max|ref|), 2·e_naive), e_naive the error of
// a naive fp32 composition on the same rounded inputs) for auto, the kernel a model's decode
// runs. GQA, a head dim of 59, and a window with softcap, ALiBi and sinks, whose steps read only
// the window's cached keys.
TEST(KvCache16, DecodeEqualsTheFullPassOnTheSameRoundedKeysAndValues) {
  std::mt19937_64 rng(16);
  struct layer_case {
    mha_config config;
    bool modifiers;
  };
  for (const layer_case& c : {layer_case{{.embed_dim = 24, .num_heads = 6, .kv_heads = 2}, false},
                              layer_case{{.embed_dim = 118, .num_heads = 2, .kv_heads = 1}, false},
                              layer_case{{.embed_dim = 16, .num_heads = 4, .kv_heads = 2}, true}}) {
    const multihead_attention mha(c.config, rng);
    const int64_t B = 2, N = 41, H = mha.num_heads();
    const tensor x = testing::random_tensor({B, N, c.config.embed_dim}, rng);
    mha_options o;
    if (c.modifiers) {
      o.modifiers.window = attention_window{4, 0};
      o.modifiers.softcap = 4.0f;
      o.modifiers.alibi_slopes = tensor({4}, {0.5f, 0.25f, 0.125f, 0.0625f});
      o.modifiers.sinks = testing::random_tensor({4}, rng);
    }
    std::vector<int64_t> chunks = {9};
    chunks.insert(chunks.end(), N - 13, 1);
    chunks.push_back(4);
    for (dtype type : half_types)
      for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::auto_select})
        for (const std::vector<int64_t>& steps : {std::vector<int64_t>(N, 1), chunks}) {
          SCOPED_TRACE(std::string(to_string(type)) +
                       (impl == sdpa_impl::auto_select ? " auto" : " reference") + " E = " +
                       std::to_string(c.config.embed_dim) + (c.modifiers ? " modifiers" : "") +
                       (steps.size() == size_t(N) ? " one-token steps" : " chunks"));
          o.run.impl = impl;
          const decoded got = decode(mha, x, steps, o, type);
          // The full pass on the keys and values the cache was given, rounded as it rounds them.
          const stored_tensor k16 = round_to(type, got.k), v16 = round_to(type, got.v);
          const tensor_view q = got.q, k = k16, v = v16;
          sdpa_options full;
          full.causal = causal_mode::top_left;
          full.modifiers = o.modifiers;
          full.run.impl = sdpa_impl::reference;
          const tensor ref = sdpa_forward(q, k, v, full).out;
          const tensor out =
              heads(got.concat.data(), dtype::f32, got.concat.shape(), H).to_tensor();
          const double scale = std::max(1.0, testing::max_abs(ref));
          double tol = 1e-5 * scale;
          if (impl != sdpa_impl::reference) {
            const tensor naive =
                testing::sdpa_forward_naive_fp32(q.to_tensor(), k.to_tensor(), v.to_tensor(), full)
                    .out;
            tol = std::max(2e-5 * scale, 2 * testing::max_abs_diff(naive, ref));
          }
          EXPECT_LE(testing::max_abs_diff(out, ref), tol);
        }
  }
}

// GPT decoding with a bf16 (or f16) cache: every layer's cache stores that type, and the logits
// stay those of the full forward within the rounding of K and V (the exact check is the layer's,
// above); they differ from the f32 cache's, so the rounding did happen.
TEST(KvCache16, GptDecodeStoresTheSessionsTypeInEveryLayer) {
  std::mt19937_64 rng(9);
  const gpt_config config{.vocab = 11, .context = 8, .embed = 16, .heads = 2, .layers = 2};
  const gpt model(config, rng);
  const std::vector<int32_t> tokens{3, 1, 4, 1, 5, 9, 2, 6};
  const tensor full = model.forward(tokens, 1, 8, {});
  const double scale = std::max(1.0, testing::max_abs(full));
  for (dtype type : half_types) {
    gpt_kv_cache cache{.layers = {}, .kv_dtype = type}, f32_cache;
    double diff = 0, from_f32 = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const std::vector<float> logits = model.decode_step(tokens[t], cache);
      const std::vector<float> exact = model.decode_step(tokens[t], f32_cache);
      for (int64_t v = 0; v < config.vocab; ++v) {
        const float l = logits[static_cast<size_t>(v)];
        diff =
            std::max(diff, double(std::abs(l - full[static_cast<int64_t>(t) * config.vocab + v])));
        from_f32 = std::max(from_f32, double(std::abs(l - exact[static_cast<size_t>(v)])));
      }
    }
    ASSERT_EQ(cache.layers.size(), 2u);
    for (const kv_cache& layer : cache.layers) EXPECT_EQ(layer.type(), type);
    // bf16 keeps 8 significant bits: a relative error of 2^-9 on K and V.
    EXPECT_LE(diff, 1e-2 * scale) << to_string(type);
    EXPECT_GT(from_f32, 0.0) << to_string(type);
  }
}

TEST(KvCache16, HoldsHalfTheBytesOfAnF32Cache) {
  const int64_t f32_bytes = kv_cache(2, 3, 10, 8, 6).bytes();
  EXPECT_EQ(f32_bytes, 2 * 3 * 10 * (8 + 6) * 4);
  for (dtype type : half_types) EXPECT_EQ(kv_cache(2, 3, 10, 8, 6, type).bytes(), f32_bytes / 2);
}

// A KV cache of 32768 positions, 8 heads, d = dv = 128, filled: the peak resident memory it adds
// (VmHWM, reset before each) is the bytes it counts, and in f16 or bf16 half the f32 figure
// (docs/api.md quotes the measured numbers, which this test prints).
TEST(KvCacheMemory, A16BitCacheOf32768PositionsTakesHalfTheFp32Memory) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer adds shadow memory and keeps freed blocks in quarantine";
#endif
  if (!bench::reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  const int64_t N = 32768, H = 8, d = 128, chunk = 1024;
  std::mt19937_64 rng(8);
  const tensor kv = testing::random_tensor({1, H, chunk, d}, rng);
  const auto added_mib = [&](dtype type) {
    EXPECT_TRUE(bench::reset_peak_rss());
    const double before = bench::peak_rss_mb();
    kv_cache cache(1, H, N, d, d, type);
    for (int64_t at = 0; at < N; at += chunk) cache.append(kv, kv);
    EXPECT_EQ(cache.bytes(), 2 * N * H * d * size_in_bytes(type));
    const double added = bench::peak_rss_mb() - before;
    std::printf(
        "KV cache of %lld positions, %lld heads, d = %lld in %s: %lld bytes counted, "
        "%.1f MiB of peak RSS added\n",
        static_cast<long long>(N), static_cast<long long>(H), static_cast<long long>(d),
        to_string(type), static_cast<long long>(cache.bytes()), added);
    return added;
  };
  const double f32 = added_mib(dtype::f32);
  EXPECT_NEAR(f32, 256.0, 256.0 * 0.05);  // 2·32768·8·128·4 bytes = 256 MiB
  for (dtype type : half_types) {
    const double half = added_mib(type);
    EXPECT_NEAR(half / f32, 0.5, 0.03) << to_string(type) << ": " << half << " MiB against " << f32;
  }
}

}  // namespace
}  // namespace qkv::nn
