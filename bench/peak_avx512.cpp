// The peak row's FMA loop for AVX-512F (16 lanes); called only where cpuid reports it.
#include <cstdint>

#pragma GCC target("avx512f,avx2,fma")

#include "kernels/simd/avx512.hpp"
#include "peak_loop.hpp"

namespace qkv::bench {

float fma_loop_avx512() {
  return fma_loop<simd::avx512, avx512_chains>();
}

}  // namespace qkv::bench
