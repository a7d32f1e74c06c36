// Arrays across the Python boundary: any buffer-protocol object (or anything NumPy can view, such
// as a CPU torch tensor) in, NumPy arrays out. Element types the kernels do not take are a
// TypeError naming the argument and the dtype, before any work is done.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>

#include "qkv/attention.hpp"
#include "qkv/stored_tensor.hpp"
#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::python {

namespace py = pybind11;

// The element types a buffer may hold here. float16 is what the kernels read as f16 (query, key
// and value); elsewhere it is refused by name. NumPy has no bfloat16.
enum class element_type { float32, float16, boolean };

// The buffer of `object` (requested read-only, strided, with its format) and its element type;
// a TypeError naming `argument` and what was `expected` for an object without the buffer
// protocol or of another dtype.
struct input_buffer {
  py::buffer_info info;
  element_type type;
};
input_buffer request_buffer(const std::string& argument, const py::handle& object,
                            const char* expected);

// A float input as the attention dispatcher reads it: a view of the caller's memory when the
// kernels can read it in place (aligned, strides >= 0 in whole elements, unit stride along the
// last dimension), else a view of a contiguous copy held here. float32, or also float16 (an f16
// view, its bits unconverted) with `float16_too`. The buffer stays exported, so that NumPy
// refuses to resize or free it, while the input lives.
class float_input {
 public:
  float_input(const std::string& argument, const py::handle& object, bool float16_too = false);
  const tensor_view& view() const { return view_; }
  operator const tensor_view&() const { return view_; }  // NOLINT: implicit, for the API calls
  const shape_t& shape() const { return view_.shape(); }

 private:
  py::buffer_info info_;
  std::optional<stored_tensor> copy_;
  tensor_view view_;
};
// A float32 input as an owning tensor (a copy), for the layers that take tensors.
tensor float_tensor(const std::string& argument, const py::handle& object);
// A mask with PyTorch SDPA's meanings: bool (true = may attend) or float32 (added to S).
attention_mask mask_input(const std::string& argument, const py::handle& object);
// The impl ("reference", "fused" or "auto") and threads keyword arguments; errors name them.
run_options run_input(const std::string& impl, int threads);

// A NumPy array that owns `t`'s buffer (no copy).
py::array to_numpy(tensor&& t);
// A new C-contiguous float32 NumPy array, and a view through which the library writes into it.
struct output_array {
  explicit output_array(const shape_t& shape);
  py::array_t<float> array;
  mutable_tensor_view view;
};

}  // namespace qkv::python
