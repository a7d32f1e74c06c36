// The residual connection of the Transformer layers: x + sublayer(x), element by element.
#pragma once

#include "qkv/error.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn::detail {

inline tensor add(tensor a, const tensor& b) {
  QKV_ASSERT(a.shape() == b.shape());
  for (int64_t n = 0; n < a.numel(); ++n) a[n] += b[n];
  return a;
}

}  // namespace qkv::nn::detail
