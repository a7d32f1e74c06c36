// An owning, contiguous, row-major buffer of one storage dtype (f32, f16 or bf16): how f16 and
// bf16 data is held for the attention API, which reads it through a tensor_view without
// converting it first. qkv::tensor stays the fp32 compute type; a stored_tensor is the storage.
//
//   const stored_tensor k16 = round_to(dtype::bf16, k);   // k: a qkv::tensor
//   sdpa_forward(q, k16, v16);                            // the kernels widen as they read
//   tensor back = k16.to_tensor();                        // exact: every bf16 is an fp32
#pragma once

#include <cstddef>
#include <vector>

#include "qkv/dtype.hpp"
#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv {

class stored_tensor {
 public:
  stored_tensor() = default;
  // Zeros (all bits clear, +0 in every dtype).
  stored_tensor(dtype type, shape_t shape);

  dtype type() const { return type_; }
  const shape_t& shape() const { return shape_; }
  int64_t numel() const { return element_count(shape_); }
  int64_t bytes() const { return static_cast<int64_t>(bytes_.size()); }
  // The elements, row-major: float for f32, the 16-bit patterns (uint16_t) for f16 and bf16.
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }

  // Views of the whole buffer (row-major strides), typed: what the attention API takes.
  operator tensor_view() const {
    return {data(), type_, shape_};
  }  // NOLINT: goes where a view goes
  mutable_tensor_view mutable_view() { return {data(), type_, shape_}; }
  // Every element widened to fp32, exactly.
  tensor to_tensor() const { return tensor_view(*this).to_tensor(); }

 private:
  dtype type_ = dtype::f32;
  shape_t shape_;
  // operator new's alignment (at least 16 bytes) suits every dtype.
  std::vector<std::byte> bytes_;
};

// Each element of `t` rounded to `type`: to the nearest value, ties to even (qkv/half.hpp), NaN
// kept NaN, infinities and magnitudes past the largest finite value infinite; f32 copies exactly.
stored_tensor round_to(dtype type, const tensor& t);

}  // namespace qkv
