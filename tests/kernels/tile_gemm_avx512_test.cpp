// tile_gemm.hpp's products on the AVX-512 target (tile_gemm_check.hpp), when the CPU has
// AVX-512F. Only the code after the target pragma uses AVX-512.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
#include "kernels/simd/avx512.hpp"
#include "tile_gemm_check.hpp"

namespace qkv {
namespace {

void check_avx512() {
  testing::check_tile_gemm<detail::tile_gemm<simd::avx512, 2>>("avx512");
  testing::check_tile_gemm<detail::tile_gemm<simd::avx512, 4>>("avx512");
}
#pragma GCC pop_options

TEST(TileGemm, Avx512MatchesFloat64) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2") ||
      !__builtin_cpu_supports("fma"))
    GTEST_SKIP() << "no AVX-512F on this CPU";
  check_avx512();
}

}  // namespace
}  // namespace qkv
