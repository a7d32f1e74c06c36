// The portable target's widening loads of f16 and bf16 against qkv/half.hpp, every bit pattern
// (support/widen_check.hpp). Every CPU runs it.
#include <gtest/gtest.h>

#include "kernels/simd/elements.hpp"
#include "kernels/simd/portable.hpp"
#include "support/widen_check.hpp"
#include "support/widen_every_pattern.hpp"

namespace qkv {
namespace {

testing::widened widened_by_portable() {
  return testing::widen_every_pattern<simd::portable>();
}

TEST(SimdWiden, PortableMatchesHalfOnEveryPattern) {
  testing::expect_widened_as_half(widened_by_portable(), "portable");
}

}  // namespace
}  // namespace qkv
