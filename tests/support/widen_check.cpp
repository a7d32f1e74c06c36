// The checks of widen_check.hpp.
#include "support/widen_check.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "qkv/half.hpp"

namespace qkv::testing {

std::vector<uint16_t> all_16_bit_patterns() {
  std::vector<uint16_t> bits(65536);
  for (uint32_t i = 0; i < 65536; ++i) bits[i] = static_cast<uint16_t>(i);
  return bits;
}

void expect_widened_as_half(const widened& w, const char* target) {
  ASSERT_EQ(w.f16_load.size(), 65536u) << target;
  ASSERT_EQ(w.bf16_load.size(), 65536u) << target;
  ASSERT_EQ(w.f16_widen8.size(), 65536u) << target;
  ASSERT_EQ(w.bf16_widen8.size(), 65536u) << target;
  int failures = 0;
  const auto same = [&](float got, float want, uint32_t pattern, const char* what) {
    const bool ok = std::isnan(want)
                        ? std::isnan(got)
                        : std::bit_cast<uint32_t>(got) == std::bit_cast<uint32_t>(want);
    if (!ok && ++failures <= 10)
      ADD_FAILURE() << target << " " << what << " of 0x" << std::hex << pattern << ": got " << got
                    << ", half.hpp gives " << want;
  };
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    same(w.f16_load[i], f16_to_float(h), i, "f16 load");
    same(w.f16_widen8[i], f16_to_float(h), i, "f16 widen8");
    same(w.bf16_load[i], bf16_to_float(h), i, "bf16 load");
    same(w.bf16_widen8[i], bf16_to_float(h), i, "bf16 widen8");
  }
}

}  // namespace qkv::testing
