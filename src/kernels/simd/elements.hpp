// The storage types the kernels read their inputs from, as C++ types a kernel is compiled for
// (float, f16, bf16): each vector type (portable.hpp, avx2.hpp, avx512.hpp) loads them into fp32
// registers with an overload of load(), widening exactly as qkv/half.hpp defines; widen() is the
// same for one element. Include before any target pragma: the inline conversions stay baseline.
#pragma once

#include <array>
#include <cstdint>

#include "qkv/dtype.hpp"
#include "qkv/half.hpp"

namespace qkv::simd {

struct f16 {  // IEEE binary16
  uint16_t bits;
};
struct bf16 {  // bfloat16, the upper half of an fp32
  uint16_t bits;
};

inline float widen(float x) {
  return x;
}
inline float widen(f16 x) {
  return f16_to_float(x.bits);
}
inline float widen(bf16 x) {
  return bf16_to_float(x.bits);
}

// Asks for the cache lines of x[at, at + n) to be brought into the L2 cache (prefetcht1) ahead
// of their use. A hint, which never faults: the range may lie past the end of x's array (the
// address is computed as an integer, never as a pointer out of bounds).
template <typename E>
inline void prefetch_l2(const E* x, int64_t at, int64_t n) {
  if (n <= 0) return;
  const uintptr_t start = reinterpret_cast<uintptr_t>(x) + static_cast<uintptr_t>(at * sizeof(E));
  const uintptr_t last = start + static_cast<uintptr_t>(n * sizeof(E)) - 1;
  for (uintptr_t line = start / 64 * 64; line <= last; line += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 2);
}

// The C++ element type of a dtype.
template <dtype T>
struct element_of {
  using type = float;
};
template <>
struct element_of<dtype::f16> {
  using type = f16;
};
template <>
struct element_of<dtype::bf16> {
  using type = bf16;
};
template <dtype T>
using element_t = typename element_of<T>::type;

// {pick<float>(), pick<f16>(), pick<bf16>()}: one entry point of a kernel per storage type, in
// dtype's order, for a table indexed by the dtype chosen at run time.
template <typename F>
constexpr auto per_storage_type(F pick) {
  return std::array{pick.template operator()<float>(), pick.template operator()<f16>(),
                    pick.template operator()<bf16>()};
}

// f.template operator()<E>() with E the element type of `type`: a kernel compiled per storage type
// chosen at run time.
template <typename F>
decltype(auto) with_element_type(dtype type, F&& f) {
  switch (type) {
    case dtype::f16:
      return f.template operator()<f16>();
    case dtype::bf16:
      return f.template operator()<bf16>();
    default:
      return f.template operator()<float>();
  }
}

// dst[c] = scale·x[c·stride] for c < n, x stored as `type`: a row of Q widened (scalar: once per
// row block, beside the products over it).
inline void widen_row(const void* x, dtype type, int64_t n, int64_t stride, float scale,
                      float* dst) {
  with_element_type(type, [&]<typename E>() {
    const E* row = static_cast<const E*>(x);
    for (int64_t c = 0; c < n; ++c) dst[c] = scale * widen(row[c * stride]);
  });
}

}  // namespace qkv::simd
