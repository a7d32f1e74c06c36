// Arrays across the Python boundary: any buffer-protocol object (or anything NumPy can view, such
// as a CPU torch tensor) in, NumPy arrays out. Element types the kernels do not take are a
// TypeError naming the argument and the dtype, before any work is done.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "qkv/attention.hpp"
#include "qkv/tensor.hpp"

namespace qkv::python {

namespace py = pybind11;

// The element types a buffer may hold here. float16 is recognised so that it can be refused by
// name until a kernel takes it.
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

// A float32 input as the library's tensor (any strides; a copy until the API takes views).
tensor float_input(const std::string& argument, const py::handle& object);
// A mask with PyTorch SDPA's meanings: bool (true = may attend) or float32 (added to S).
attention_mask mask_input(const std::string& argument, const py::handle& object);

// A NumPy array that owns `t`'s buffer (no copy).
py::array to_numpy(tensor&& t);

}  // namespace qkv::python
