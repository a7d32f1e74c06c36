// The heads of a projection, without copies: x [B,N,H·hd] read as [B,H,N,hd] (element
// (b, h, n, c) at x[b, n, h·hd + c]), the layout the attention dispatcher takes.
#pragma once

#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::nn::detail {

tensor_view as_heads(const tensor& x, int64_t H);
mutable_tensor_view as_heads(tensor& x, int64_t H);

}  // namespace qkv::nn::detail
