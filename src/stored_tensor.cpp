// Owning storage of one dtype, and rounding fp32 tensors into it.
#include "qkv/stored_tensor.hpp"

#include <cstring>

#include "qkv/half.hpp"

namespace qkv {

stored_tensor::stored_tensor(dtype type, shape_t shape)
    : type_(type),
      shape_(std::move(shape)),
      bytes_(static_cast<size_t>(element_count(shape_) * size_in_bytes(type))) {}

stored_tensor round_to(dtype type, const tensor& t) {
  stored_tensor out(type, t.shape());
  const int64_t n = t.numel();
  auto* bits = static_cast<uint16_t*>(out.data());
  switch (type) {
    case dtype::f16:
      for (int64_t i = 0; i < n; ++i) bits[i] = float_to_f16(t[i]);
      break;
    case dtype::bf16:
      for (int64_t i = 0; i < n; ++i) bits[i] = float_to_bf16(t[i]);
      break;
    default:
      if (n > 0)  // an empty tensor has no storage, and memcpy must not see a null pointer
        std::memcpy(out.data(), t.data(), static_cast<size_t>(n) * sizeof(float));
  }
  return out;
}

}  // namespace qkv
