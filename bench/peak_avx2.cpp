// The peak row's FMA loop for AVX2+FMA (8 lanes); called only where cpuid reports both.
#include <cstdint>

#pragma GCC target("avx2,fma")

#include "kernels/simd/avx2.hpp"
#include "peak_loop.hpp"

namespace qkv::bench {

float fma_loop_avx2() {
  return fma_loop<simd::avx2, avx2_chains>();
}

}  // namespace qkv::bench
