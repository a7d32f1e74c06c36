// The heads of a projection, without copies: x [B,N,H·hd] read as [B,H,N,hd] (element
// (b, h, n, c) at x[b, n, h·hd + c]), the layout the attention dispatcher takes; or H heads of
// hd columns starting at column `first` of a wider x [B,N,C] (one of the stacked Q, K, V).
#pragma once

#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::nn::detail {

tensor_view as_heads(const tensor& x, int64_t H);
mutable_tensor_view as_heads(tensor& x, int64_t H);
tensor_view as_heads(const tensor& x, int64_t H, int64_t hd, int64_t first);
mutable_tensor_view as_heads(tensor& x, int64_t H, int64_t hd, int64_t first);

// An attention's projections (or their gradients) as heads: q [B,N,H·hd], k and v
// [B,N,Hkv·hd] themselves, or, when `stacked` has a rank, the column blocks [0, H·hd),
// [H·hd, (H + Hkv)·hd) and [(H + Hkv)·hd, C) of stacked [B,N,C]. Mutable views of mutable
// tensors.
enum class projection { q, k, v };
template <typename Tensor>
auto projection_heads(Tensor& q, Tensor& k, Tensor& v, Tensor& stacked, int64_t H, int64_t Hkv,
                      int64_t hd, projection which) {
  const int64_t n = which == projection::q ? H : Hkv;
  if (stacked.rank() == 0)
    return as_heads(which == projection::q ? q : which == projection::k ? k : v, n);
  const int64_t first = which == projection::q   ? 0
                        : which == projection::k ? H * hd
                                                 : (H + Hkv) * hd;
  return as_heads(stacked, n, hd, first);
}

}  // namespace qkv::nn::detail
