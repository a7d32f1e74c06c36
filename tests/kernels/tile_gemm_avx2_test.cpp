// tile_gemm.hpp's products on the AVX2 target (tile_gemm_check.hpp), when the CPU has AVX2 and
// FMA. Only the code after the target pragma uses AVX2.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "kernels/simd/avx2.hpp"
#include "tile_gemm_check.hpp"

namespace qkv {
namespace {

void check_avx2() {
  testing::check_tile_gemm<detail::tile_gemm<simd::avx2, 2>>("avx2");
  testing::check_tile_gemm<detail::tile_gemm<simd::avx2, 4>>("avx2");
}
#pragma GCC pop_options

TEST(TileGemm, Avx2MatchesFloat64) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    GTEST_SKIP() << "no AVX2+FMA on this CPU";
  check_avx2();
}

}  // namespace
}  // namespace qkv
