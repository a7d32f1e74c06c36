// The AVX-512F vector operations (16 floats per register, 32 registers): the interface of
// avx2.hpp at twice the width. Include only from a translation unit compiled for AVX-512F with
// AVX2+FMA+F16C (every AVX-512 CPU has them), e.g. under `#pragma GCC
// target("avx512f,avx2,fma,f16c")`.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "avx2.hpp"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_ps() on purpose as the unused merge source
// of their unmasked forms, which -Wuninitialized then flags at every caller (GCC bug 105593,
// fixed in GCC 13). Silenced in the translation units that include this file, which are the
// AVX-512 ones only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace qkv::simd {

struct avx512 {
  static constexpr int width = 16;
  static constexpr int registers = 32;
  using reg = __m512;

  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  // 16 f16 by vcvtph2ps; 16 bf16 zero-extended to 32 bits and shifted into the upper half.
  static reg load(const f16* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static reg load(const bf16* p) {
    const __m512i wide =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  // 8 elements of any storage type into 8 floats (half a vector: the 8x8 packing's rows).
  template <typename E>
  static void widen8(const E* p, float* dst) {
    avx2::widen8(p, dst);
  }
  static void store(float* p, reg x) { _mm512_storeu_ps(p, x); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  // max and min return b when either operand is NaN, as vmaxps/vminps do at every width.
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }    // a·b + c
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a·b
  // The float whose bits are those of x shifted into the exponent field (x << 23).
  static reg low_bits_to_exponent(reg x) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(x), 23));
  }
  static float reduce_add(reg x) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(x), upper_half(x));
    return avx2::reduce_add(h);
  }
  static float reduce_max(reg x) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(x), upper_half(x));
    return avx2::reduce_max(h);
  }
  // The vector of the 16 horizontal sums: lane i = sum of x[i]'s lanes. Pairs are summed within
  // 128-bit lanes (unpack, then shuffle: 4 sums per 128-bit lane), then the 128-bit lanes are
  // folded across registers (two rounds of shuffle_f32x4).
  [[gnu::always_inline]] static reg lane_sums(const reg* x) {
    reg t[8], u[4], w[2];
    for (int k = 0; k < 8; ++k)
      t[k] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * k], x[2 * k + 1]),
                           _mm512_unpackhi_ps(x[2 * k], x[2 * k + 1]));
    for (int k = 0; k < 4; ++k)
      u[k] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // u[k]'s 128-bit lane L holds x[4k..4k+3]'s sums over their lane L.
    for (int k = 0; k < 2; ++k)
      w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // dst[c·ld_dst + r] = src[r·ld_src + c] for an 8x8 block: 256-bit shuffles serve as well here.
  static void transpose8x8(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
    avx2::transpose8x8(src, ld_src, dst, ld_dst);
  }

 private:
  static __m256 upper_half(reg x) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
  }
};

}  // namespace qkv::simd
