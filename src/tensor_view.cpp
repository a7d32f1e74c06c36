// Strided views: construction checks, reordering and slicing (pure stride arithmetic), copies.
#include "qkv/tensor_view.hpp"

#include <algorithm>
#include <numeric>

#include "qkv/error.hpp"
#include "qkv/half.hpp"

namespace qkv {

tensor_view::tensor_view(const tensor& t)
    : data_(t.data()), shape_(t.shape()), strides_(t.strides()) {}

tensor_view::tensor_view(const float* data, shape_t shape, shape_t strides)
    : tensor_view(data, dtype::f32, std::move(shape), std::move(strides)) {}

tensor_view::tensor_view(const void* data, dtype type, shape_t shape, shape_t strides)
    : data_(data), type_(type), shape_(std::move(shape)), strides_(std::move(strides)) {
  element_count(shape_);  // throws on a negative size
  if (strides_.empty() && !shape_.empty()) strides_ = contiguous_strides(shape_);
  if (strides_.size() != shape_.size())
    throw error("tensor_view", "strides " + to_string(strides_) +
                                   " do not match the rank of shape " + to_string(shape_));
  for (int64_t s : strides_)
    if (s < 0)
      throw error("tensor_view", "strides must be >= 0, got " + to_string(strides_) +
                                     " for shape " + to_string(shape_));
  if (data_ == nullptr && numel() > 0)
    throw error("tensor_view", "null data for shape " + to_string(shape_));
}

const float* tensor_view::f32() const {
  QKV_ASSERT(type_ == dtype::f32);
  return static_cast<const float*>(data_);
}

tensor_view tensor_view::permuted(std::initializer_list<int64_t> order) const {
  std::vector<int64_t> sorted(order);
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(static_cast<size_t>(rank()));
  std::iota(identity.begin(), identity.end(), 0);
  if (sorted != identity)
    throw error("tensor_view", "permutation " + to_string(shape_t(order)) +
                                   " is not an order of the dimensions of shape " +
                                   to_string(shape_));
  tensor_view out = *this;
  size_t i = 0;
  for (int64_t dim : order) {
    out.shape_[i] = shape_[static_cast<size_t>(dim)];
    out.strides_[i++] = strides_[static_cast<size_t>(dim)];
  }
  return out;
}

tensor_view tensor_view::sliced(int64_t dim, int64_t begin, int64_t count) const {
  if (dim < -rank() || dim >= rank() || begin < 0 || count < 0 || begin + count > size(dim))
    throw error("tensor_view", "slice [" + std::to_string(begin) + ", " +
                                   std::to_string(begin + count) + ") of dimension " +
                                   std::to_string(dim) + " is outside shape " + to_string(shape_));
  tensor_view out = *this;
  out.data_ = static_cast<const char*>(data_) + begin * stride(dim) * size_in_bytes(type_);
  out.shape_[axis(dim)] = count;
  return out;
}

tensor tensor_view::to_tensor() const {
  tensor out(shape_);
  const auto* bits = static_cast<const uint16_t*>(data_);
  const auto element = [&](int64_t at) {
    switch (type_) {
      case dtype::f16:
        return f16_to_float(bits[at]);
      case dtype::bf16:
        return bf16_to_float(bits[at]);
      default:
        return static_cast<const float*>(data_)[at];
    }
  };
  // Row-major walk of the index, the source offset kept by strides (an odometer).
  shape_t index(shape_.size(), 0);
  int64_t offset = 0;
  for (int64_t n = 0; n < out.numel(); ++n) {
    out[n] = element(offset);
    for (size_t dim = shape_.size(); dim-- > 0;) {
      offset += strides_[dim];
      if (++index[dim] < shape_[dim]) break;
      offset -= strides_[dim] * shape_[dim];
      index[dim] = 0;
    }
  }
  return out;
}

mutable_tensor_view::mutable_tensor_view(tensor& t) : tensor_view(t) {}

mutable_tensor_view::mutable_tensor_view(float* data, shape_t shape, shape_t strides)
    : tensor_view(data, std::move(shape), std::move(strides)) {}

mutable_tensor_view::mutable_tensor_view(void* data, dtype type, shape_t shape, shape_t strides)
    : tensor_view(data, type, std::move(shape), std::move(strides)) {}

mutable_tensor_view mutable_tensor_view::permuted(std::initializer_list<int64_t> order) const {
  return mutable_tensor_view(tensor_view::permuted(order));
}

mutable_tensor_view mutable_tensor_view::sliced(int64_t dim, int64_t begin, int64_t count) const {
  return mutable_tensor_view(tensor_view::sliced(dim, begin, count));
}

bool overlaps(const tensor_view& view) {
  // Dimensions of more than one element, innermost (smallest stride) first: each must step
  // past everything the dimensions inside it span.
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
  for (int64_t i = 0; i < view.rank(); ++i)
    if (view.size(i) > 1) dims.emplace_back(view.stride(i), view.size(i));
  std::sort(dims.begin(), dims.end());
  int64_t span = 1;  // elements covered by the dimensions so far, from the first one
  for (const auto& [stride, size] : dims) {
    if (stride < span) return true;
    span = stride * (size - 1) + span;
  }
  return false;
}

}  // namespace qkv
