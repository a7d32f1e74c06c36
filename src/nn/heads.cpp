// Head views. Legend: B batch, N tokens, H heads, hd head dim.
#include "heads.hpp"

#include "qkv/error.hpp"

namespace qkv::nn::detail {

namespace {
shape_t split_shape(const tensor& x, int64_t H) {
  QKV_ASSERT(x.rank() == 3 && x.size(2) % H == 0);
  return {x.size(0), x.size(1), H, x.size(2) / H};
}
}  // namespace

tensor_view as_heads(const tensor& x, int64_t H) {
  return tensor_view(x.data(), split_shape(x, H)).permuted({0, 2, 1, 3});
}

mutable_tensor_view as_heads(tensor& x, int64_t H) {
  return mutable_tensor_view(x.data(), split_shape(x, H)).permuted({0, 2, 1, 3});
}

}  // namespace qkv::nn::detail
