// The SIMD targets' widening loads (src/kernels/simd: f16 by F16C or by qkv/half.hpp, bf16 by a
// shift) against qkv/half.hpp's exact definition, over every 16-bit pattern.
#pragma once

#include <cstdint>
#include <vector>

namespace qkv::testing {

// The 65536 bit patterns in order: pattern i is i.
std::vector<uint16_t> all_16_bit_patterns();

// What a target made of every pattern: by its vector load (whole vectors) and by widen8 (8 at a
// time), as f16 and as bf16.
struct widened {
  std::vector<float> f16_load, bf16_load, f16_widen8, bf16_widen8;
};

// Each value must have the bits half.hpp gives; a NaN pattern must give a NaN (F16C quiets a
// signalling NaN, which the scalar definition keeps as it is).
void expect_widened_as_half(const widened& w, const char* target);

}  // namespace qkv::testing
