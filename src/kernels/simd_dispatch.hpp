// The one choice among a kernel's per-target entry points: the target resolve_simd_target picks.
#pragma once

#include "qkv/fused.hpp"

namespace qkv::detail {

template <typename T>
T for_simd_target(simd_target requested, T avx512, T avx2, T portable) {
  switch (resolve_simd_target(requested)) {
    case simd_target::avx512:
      return avx512;
    case simd_target::avx2:
      return avx2;
    default:
      return portable;
  }
}

}  // namespace qkv::detail
