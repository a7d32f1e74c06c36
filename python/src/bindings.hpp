// The parts of the extension module qkv._qkv, one function per source file.
#pragma once

#include <pybind11/pybind11.h>

namespace qkv::python {

namespace py = pybind11;

void bind_sdpa(py::module_& m);    // sdpa.cpp
void bind_layers(py::module_& m);  // layers.cpp: MultiheadAttention, explain

}  // namespace qkv::python
