// The portable vector operations: the same interface as avx2.hpp over plain arrays of 8 floats,
// which the compiler vectorises for the baseline instruction set. The fallback on any CPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "elements.hpp"

namespace qkv::simd {

struct portable {
  static constexpr int width = 8;
  static constexpr int registers = 16;  // what the micro-tiles are sized for (as AVX2's)
  struct reg {
    float x[8];
  };

  template <typename F>
  static reg map(F f) {
    reg r;
    for (int l = 0; l < width; ++l) r.x[l] = f(l);
    return r;
  }
  static reg zero() { return set1(0.0f); }
  static reg set1(float v) {
    return map([&](int) { return v; });
  }
  // float, or any storage type, each element widened by qkv/half.hpp's definition.
  template <typename E>
  static reg load(const E* p) {
    return map([&](int l) { return widen(p[l]); });
  }
  template <typename E>
  static void widen8(const E* p, float* dst) {
    store(dst, load(p));
  }
  static void store(float* p, reg a) { std::memcpy(p, a.x, sizeof a.x); }
  static reg add(reg a, reg b) {
    return map([&](int l) { return a.x[l] + b.x[l]; });
  }
  static reg sub(reg a, reg b) {
    return map([&](int l) { return a.x[l] - b.x[l]; });
  }
  static reg mul(reg a, reg b) {
    return map([&](int l) { return a.x[l] * b.x[l]; });
  }
  static reg max(reg a, reg b) {
    return map([&](int l) { return a.x[l] > b.x[l] ? a.x[l] : b.x[l]; });
  }
  static reg min(reg a, reg b) {
    return map([&](int l) { return a.x[l] < b.x[l] ? a.x[l] : b.x[l]; });
  }
  // Unfused a·b + c: the baseline has no FMA instruction, and std::fma would be a library call.
  static reg fmadd(reg a, reg b, reg c) {
    return map([&](int l) { return a.x[l] * b.x[l] + c.x[l]; });
  }
  static reg fnmadd(reg a, reg b, reg c) {
    return map([&](int l) { return c.x[l] - a.x[l] * b.x[l]; });
  }
  static reg low_bits_to_exponent(reg a) {
    return map([&](int l) {
      uint32_t bits;
      std::memcpy(&bits, &a.x[l], sizeof bits);
      bits <<= 23;
      float f;
      std::memcpy(&f, &bits, sizeof f);
      return f;
    });
  }
  static float reduce_add(reg a) {
    float s = 0.0f;
    for (float v : a.x) s += v;
    return s;
  }
  // The vector of the 8 horizontal sums: lane i = sum of x[i]'s lanes.
  static reg lane_sums(const reg* x) {
    return map([&](int i) { return reduce_add(x[i]); });
  }
  static float reduce_max(reg a) {
    float m = a.x[0];
    for (float v : a.x) m = v > m ? v : m;
    return m;
  }
  static void transpose8x8(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) dst[c * ld_dst + r] = src[r * ld_src + c];
  }
};

}  // namespace qkv::simd
