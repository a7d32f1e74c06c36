// The extension module qkv._qkv. The package qkv (python/qkv/) wraps it with PyTorch's
// signatures and the docstrings; this file only assembles the parts and maps the library's
// errors: a qkv::error (bad input: its message names the argument, the rule and the shapes)
// becomes qkv.Error, a subclass of ValueError.
#include "bindings.hpp"
#include "qkv/error.hpp"

PYBIND11_MODULE(_qkv, m) {
  m.doc() = "qkv's C++ attention library (use the package qkv, not this module)";
  pybind11::register_exception<qkv::error>(m, "Error", PyExc_ValueError);
  qkv::python::bind_sdpa(m);
  qkv::python::bind_layers(m);
}
