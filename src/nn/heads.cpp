// Head views. Legend: B batch, N tokens, H heads, hd head dim, C the row width of x.
#include "heads.hpp"

#include "qkv/error.hpp"

namespace qkv::nn::detail {

namespace {
// [B,N,H,hd] with x's row stride C.
shape_t split_shape(const tensor& x, int64_t H, int64_t hd, int64_t first) {
  QKV_ASSERT(x.rank() == 3 && first >= 0 && first + H * hd <= x.size(2));
  return {x.size(0), x.size(1), H, hd};
}
shape_t split_strides(const tensor& x, int64_t hd) {
  return {x.size(1) * x.size(2), x.size(2), hd, 1};
}
// Column `first` of the first row (an empty x may have no buffer to offset).
int64_t start(const tensor& x, int64_t first) {
  return x.numel() ? first : 0;
}
}  // namespace

tensor_view as_heads(const tensor& x, int64_t H) {
  QKV_ASSERT(x.rank() == 3 && x.size(2) % H == 0);
  return as_heads(x, H, x.size(2) / H, 0);
}

mutable_tensor_view as_heads(tensor& x, int64_t H) {
  QKV_ASSERT(x.rank() == 3 && x.size(2) % H == 0);
  return as_heads(x, H, x.size(2) / H, 0);
}

tensor_view as_heads(const tensor& x, int64_t H, int64_t hd, int64_t first) {
  return tensor_view(x.data() + start(x, first), split_shape(x, H, hd, first), split_strides(x, hd))
      .permuted({0, 2, 1, 3});
}

mutable_tensor_view as_heads(tensor& x, int64_t H, int64_t hd, int64_t first) {
  return mutable_tensor_view(x.data() + start(x, first), split_shape(x, H, hd, first),
                             split_strides(x, hd))
      .permuted({0, 2, 1, 3});
}

}  // namespace qkv::nn::detail
