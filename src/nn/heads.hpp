// Splitting the model dimension into heads and back: [B,N,H·hd] <-> [B,H,N,hd] (copies, since
// the attention API takes contiguous [B,H,N,hd] tensors).
#pragma once

#include "qkv/tensor.hpp"

namespace qkv::nn::detail {

// x [B,N,H·hd] -> [B,H,N,hd].
tensor split_heads(const tensor& x, int64_t H);
// o [B,H,N,hd] -> [B,N,H·hd].
tensor merge_heads(const tensor& o);

}  // namespace qkv::nn::detail
