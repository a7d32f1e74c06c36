// tile_gemm.hpp's products on the portable target (tile_gemm_check.hpp), which every CPU runs;
// the AVX2 and AVX-512 targets: tile_gemm_avx2_test.cpp, tile_gemm_avx512_test.cpp.
#include <gtest/gtest.h>

#include "kernels/simd/portable.hpp"
#include "tile_gemm_check.hpp"

namespace qkv {
namespace {

TEST(TileGemm, PortableMatchesFloat64) {
  testing::check_tile_gemm<detail::tile_gemm<simd::portable, 2>>("portable");
  testing::check_tile_gemm<detail::tile_gemm<simd::portable, 4>>("portable");
}

}  // namespace
}  // namespace qkv
