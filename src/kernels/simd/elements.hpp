// The storage types the kernels read their inputs from, as C++ types a kernel is compiled for
// (float, f16, bf16): each vector type (portable.hpp, avx2.hpp, avx512.hpp) loads them into fp32
// registers with an overload of load(), widening exactly as qkv/half.hpp defines; widen() is the
// same for one element. Include before any target pragma: the inline conversions stay baseline.
#pragma once

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

}  // namespace qkv::simd
