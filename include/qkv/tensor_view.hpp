// Non-owning strided views: a data pointer, a shape, strides in elements and a dtype tag. What the
// attention API reads and writes; made from a qkv::tensor or from someone else's memory (a NumPy
// array, a KV cache, a projection's output read as heads). Views never allocate nor copy.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "qkv/dtype.hpp"
#include "qkv/tensor.hpp"

namespace qkv {

// A read-only view. Strides may be any non-negative numbers (0 repeats an element along that
// dimension, as broadcasting does); the shape and the strides have the same rank.
class tensor_view {
 public:
  tensor_view() = default;
  // The whole tensor: f32, row-major strides.
  tensor_view(const tensor& t);  // NOLINT: implicit, so a tensor goes wherever a view does
  // f32 memory laid out by `strides` (row-major when omitted).
  tensor_view(const float* data, shape_t shape, shape_t strides = {});
  // Memory of any dtype. Throws qkv::error when the strides do not fit the shape.
  tensor_view(const void* data, dtype type, shape_t shape, shape_t strides = {});

  const void* data() const { return data_; }
  // The data as f32 (a bug if the dtype is another: the dispatcher checks it first).
  const float* f32() const;
  dtype type() const { return type_; }
  const shape_t& shape() const { return shape_; }
  const shape_t& strides() const { return strides_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t dim) const { return shape_[axis(dim)]; }
  int64_t stride(int64_t dim) const { return strides_[axis(dim)]; }
  int64_t numel() const { return element_count(shape_); }
  // Row-major with no gaps, as a qkv::tensor is.
  bool contiguous() const { return strides_ == contiguous_strides(shape_); }

  // The same elements with the dimensions reordered: result dimension i is this view's
  // order[i] (NumPy's transpose). Throws unless `order` is a permutation of 0..rank-1.
  tensor_view permuted(std::initializer_list<int64_t> order) const;
  // Elements [begin, begin + count) along `dim`. Throws when out of range.
  tensor_view sliced(int64_t dim, int64_t begin, int64_t count) const;
  // A contiguous f32 copy, each element widened exactly (for tests and for callers that need an
  // owning tensor).
  tensor to_tensor() const;

 protected:
  size_t axis(int64_t dim) const { return static_cast<size_t>(dim < 0 ? dim + rank() : dim); }
  const void* data_ = nullptr;
  dtype type_ = dtype::f32;
  shape_t shape_, strides_;
};

// A view that may be written: where a caller wants the results (an output of sdpa_forward, a
// gradient of sdpa_backward). Its elements must not overlap (checked by the dispatcher).
class mutable_tensor_view : public tensor_view {
 public:
  mutable_tensor_view() = default;
  mutable_tensor_view(tensor& t);  // NOLINT: implicit, like tensor_view's
  mutable_tensor_view(float* data, shape_t shape, shape_t strides = {});
  mutable_tensor_view(void* data, dtype type, shape_t shape, shape_t strides = {});

  void* mutable_data() const { return const_cast<void*>(data_); }
  float* mutable_f32() const { return const_cast<float*>(f32()); }
  mutable_tensor_view permuted(std::initializer_list<int64_t> order) const;
  mutable_tensor_view sliced(int64_t dim, int64_t begin, int64_t count) const;

 private:
  explicit mutable_tensor_view(const tensor_view& v) : tensor_view(v) {}
};

// Whether two elements of the view share an address (some dimension's stride is too small for
// the extent of the dimensions inside it). A written view must not.
bool overlaps(const tensor_view& view);

}  // namespace qkv
