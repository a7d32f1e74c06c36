// Every 16-bit pattern widened by a vector type V's loads (V::load and V::widen8, as f16 and as
// bf16), for widen_check.hpp. Include after the target pragma of V's instruction set: these
// templates are compiled for it.
#pragma once

#include <cstdint>
#include <vector>

#include "support/widen_check.hpp"

namespace qkv::testing {

template <typename V, typename E>
void widen_all(const uint16_t* bits, float* by_load, float* by_widen8) {
  const E* src = reinterpret_cast<const E*>(bits);
  for (int64_t i = 0; i < 65536; i += V::width) V::store(by_load + i, V::load(src + i));
  for (int64_t i = 0; i < 65536; i += 8) V::widen8(src + i, by_widen8 + i);
}

template <typename V>
widened widen_every_pattern() {
  const std::vector<uint16_t> bits = all_16_bit_patterns();
  widened w{std::vector<float>(65536), std::vector<float>(65536), std::vector<float>(65536),
            std::vector<float>(65536)};
  widen_all<V, simd::f16>(bits.data(), w.f16_load.data(), w.f16_widen8.data());
  widen_all<V, simd::bf16>(bits.data(), w.bf16_load.data(), w.bf16_widen8.data());
  return w;
}

}  // namespace qkv::testing
