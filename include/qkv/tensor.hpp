// Shapes and owning row-major buffers (their strided views: tensor_view.hpp). fp32 is the
// compute type; masks are bytes. Deliberately small: no broadcasting arithmetic, no autograd.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace qkv {

using shape_t = std::vector<int64_t>;

// "[2, 8, 64]": for error messages.
std::string to_string(const shape_t& shape);
// Number of elements of a shape (1 for rank 0). Throws on a negative size and on a product
// beyond int64 (checked: shapes come from files).
int64_t element_count(const shape_t& shape);
// Row-major (C order) strides, in elements.
shape_t contiguous_strides(const shape_t& shape);

// An owning, contiguous, row-major tensor of T (float for data, uint8_t for boolean masks).
template <typename T>
class basic_tensor {
 public:
  basic_tensor() = default;
  explicit basic_tensor(shape_t shape, T fill = T{})
      : shape_(std::move(shape)), data_(static_cast<size_t>(element_count(shape_)), fill) {}
  basic_tensor(shape_t shape, std::vector<T> data);

  const shape_t& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t dim) const {
    return shape_[static_cast<size_t>(dim < 0 ? dim + rank() : dim)];
  }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  shape_t strides() const { return contiguous_strides(shape_); }

  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  std::span<T> values() { return data_; }
  std::span<const T> values() const { return data_; }
  T& operator[](int64_t i) { return data_[static_cast<size_t>(i)]; }
  const T& operator[](int64_t i) const { return data_[static_cast<size_t>(i)]; }

  // Element at a multi-index (bounds-checked: an out-of-range index is a bug, not input).
  T& at(std::initializer_list<int64_t> index);
  const T& at(std::initializer_list<int64_t> index) const;

  // Same elements, new shape of equal element count (a temporary gives up its buffer).
  basic_tensor reshaped(shape_t shape) const&;
  basic_tensor reshaped(shape_t shape) &&;

 private:
  int64_t offset(std::initializer_list<int64_t> index) const;
  shape_t shape_;
  std::vector<T> data_;
};

using tensor = basic_tensor<float>;
using bool_tensor = basic_tensor<uint8_t>;

extern template class basic_tensor<float>;
extern template class basic_tensor<uint8_t>;

}  // namespace qkv
