// The 16-bit storage formats, one value at a time: IEEE 754 binary16 ("f16") and bfloat16 ("bf16",
// the upper half of an fp32). Conversions to fp32 are exact; conversions from fp32 round to the
// nearest representable value, ties to even, as F16C's vcvtps2ph and numpy.float16 do. NaN stays
// NaN (quiet), infinities stay infinite, and subnormals are kept, never flushed. The kernels
// convert whole vectors in registers (src/kernels/simd); these are the exact definition they
// are tested against, and what file readers and the KV cache use.
#pragma once

#include <bit>
#include <cstdint>

namespace qkv {

// binary16 -> fp32: (-1)^s · 2^(e-15) · 1.m for 0 < e < 31; 2^-14 · 0.m for e = 0.
inline float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  if (exponent == 31)  // infinity or NaN: all-ones exponent, the mantissa moved up
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)  // normal: re-bias the exponent from 15 to 127
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  // zero or subnormal: mantissa · 2^-24, exact in fp32
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign ? -magnitude : magnitude;
}

// fp32 -> binary16, round to nearest even. Magnitudes from 65520 up (the midpoint between the
// largest f16, 65504, and 2^16) become infinity.
inline uint16_t float_to_f16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u)  // NaN: keep the top of the payload, force it quiet
    return sign | 0x7e00 | static_cast<uint16_t>((magnitude >> 13) & 0x3ff);
  if (magnitude >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 (or inf): infinity
  if (magnitude >= 0x38800000u) {                      // >= 2^-14: a normal f16
    // Drop 13 mantissa bits with round-half-even (add 0xfff plus the kept lowest bit), then
    // re-bias the exponent; a carry out of the mantissa correctly bumps the exponent.
    const uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
    return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
  }
  // Below 2^-14: a subnormal f16 (or zero), the value in units of 2^-24, rounded half-even.
  // Scaling by 2^24 and rounding in fp32 is exact here: the result is below 2^10.
  const float units = std::bit_cast<float>(magnitude) * 0x1p24f;
  const float floor_units = static_cast<float>(static_cast<uint32_t>(units));
  uint32_t q = static_cast<uint32_t>(floor_units);
  const float rest = units - floor_units;
  if (rest > 0.5f || (rest == 0.5f && (q & 1u))) ++q;  // q = 1024 is 2^-14, the smallest normal
  return sign | static_cast<uint16_t>(q);
}

// bfloat16 -> fp32: the 16 bits are the upper half of the fp32.
inline float bf16_to_float(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// fp32 -> bfloat16, round to nearest even on the dropped 16 bits; NaN stays a quiet NaN.
inline uint16_t float_to_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace qkv
