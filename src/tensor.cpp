// Shapes and owning tensors.
#include "qkv/tensor.hpp"

#include <cstdio>
#include <cstdlib>

#include "qkv/error.hpp"

namespace qkv {

void assertion_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "qkv: internal error: %s failed at %s:%d\n", condition, file, line);
  std::abort();
}

std::string to_string(const shape_t& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

int64_t element_count(const shape_t& shape) {
  // Checked: a shape read from a file can have any sizes, and a product that wrapped around would
  // size an allocation smaller than the loops that later run over it. Any zero size gives 0.
  int64_t n = 1;
  bool overflow = false;
  for (int64_t s : shape) {
    if (s < 0) throw error("shape " + to_string(shape) + " has a negative size");
    overflow = overflow || __builtin_mul_overflow(n, s, &n);
  }
  for (int64_t s : shape)
    if (s == 0) return 0;
  if (overflow) throw error("shape " + to_string(shape) + " has more elements than fit in 64 bits");
  return n;
}

shape_t contiguous_strides(const shape_t& shape) {
  shape_t strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

template <typename T>
basic_tensor<T>::basic_tensor(shape_t shape, std::vector<T> data)
    : shape_(std::move(shape)), data_(std::move(data)) {
  if (element_count(shape_) != static_cast<int64_t>(data_.size()))
    throw error("tensor of shape " + to_string(shape_) + " needs " +
                std::to_string(element_count(shape_)) + " elements, got " +
                std::to_string(data_.size()));
}

template <typename T>
int64_t basic_tensor<T>::offset(std::initializer_list<int64_t> index) const {
  QKV_ASSERT(static_cast<int64_t>(index.size()) == rank());
  int64_t off = 0;
  size_t dim = 0;
  for (int64_t i : index) {
    QKV_ASSERT(i >= 0 && i < shape_[dim]);
    off = off * shape_[dim++] + i;
  }
  return off;
}

template <typename T>
T& basic_tensor<T>::at(std::initializer_list<int64_t> index) {
  return data_[static_cast<size_t>(offset(index))];
}

template <typename T>
const T& basic_tensor<T>::at(std::initializer_list<int64_t> index) const {
  return data_[static_cast<size_t>(offset(index))];
}

template <typename T>
basic_tensor<T> basic_tensor<T>::reshaped(shape_t shape) const& {
  return basic_tensor(*this).reshaped(std::move(shape));
}

template <typename T>
basic_tensor<T> basic_tensor<T>::reshaped(shape_t shape) && {
  if (element_count(shape) != numel())
    throw error("cannot reshape " + to_string(shape_) + " to " + to_string(shape));
  return basic_tensor(std::move(shape), std::move(data_));
}

template class basic_tensor<float>;
template class basic_tensor<uint8_t>;

}  // namespace qkv
