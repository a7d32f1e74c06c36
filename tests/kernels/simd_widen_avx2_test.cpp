// The avx2 target's widening loads of f16 and bf16 against qkv/half.hpp, every bit pattern
// (support/widen_check.hpp). Only the code after the target pragma uses the instruction set.
#include <gtest/gtest.h>

#include "kernels/simd/elements.hpp"
#include "qkv/fused.hpp"
#include "support/widen_check.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "kernels/simd/avx2.hpp"
#include "support/widen_every_pattern.hpp"

namespace qkv {
namespace {

testing::widened widened_by_avx2() {
  return testing::widen_every_pattern<simd::avx2>();
}
#pragma GCC pop_options

TEST(SimdWiden, Avx2MatchesHalfOnEveryPattern) {
  if (!(simd_target_available(simd_target::avx2))) GTEST_SKIP() << "this CPU lacks avx2";
  testing::expect_widened_as_half(widened_by_avx2(), "avx2");
}

}  // namespace
}  // namespace qkv
