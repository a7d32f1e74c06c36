// Buffers in, NumPy arrays out (arrays.hpp).
#include "arrays.hpp"

#include <cstring>
#include <string_view>

namespace qkv::python {
namespace {

// NumPy's name for a struct-module format character, for messages.
std::string dtype_name(std::string_view format) {
  if (format.size() == 1) switch (format[0]) {
      case 'f':
        return "float32";
      case 'd':
        return "float64";
      case 'e':
        return "float16";
      case 'g':
        return "longdouble";
      case '?':
        return "bool";
      case 'b':
        return "int8";
      case 'B':
        return "uint8";
      case 'h':
        return "int16";
      case 'H':
        return "uint16";
      case 'i':
        return "int32";
      case 'I':
        return "uint32";
      case 'l':
      case 'q':
        return "int64";
      case 'L':
      case 'Q':
        return "uint64";
      default:
        break;
    }
  if (format == "Zf") return "complex64";
  if (format == "Zd") return "complex128";
  return "buffer format '" + std::string(format) + "'";
}

// Copies the buffer's elements (of sizeof(T) bytes), in C order, to `out` (whatever its byte
// strides, even negative).
template <typename T>
void gather(const py::buffer_info& info, T* out) {
  const char* base = static_cast<const char*>(info.ptr);
  const auto rank = static_cast<size_t>(info.ndim);
  const auto count = static_cast<size_t>(info.size);
  bool contiguous = true;
  py::ssize_t expected = info.itemsize;
  for (size_t d = rank; d-- > 0;) {
    if (info.shape[d] != 1 && info.strides[d] != expected) contiguous = false;
    expected *= info.shape[d];
  }
  if (contiguous) {
    std::memcpy(out, base, count * sizeof(T));
    return;
  }
  // Odometer over the multi-index; the byte offset follows it incrementally.
  std::vector<py::ssize_t> index(rank, 0);
  py::ssize_t offset = 0;
  for (size_t e = 0; e < count; ++e) {
    std::memcpy(out + e, base + offset, sizeof(T));
    for (size_t d = rank; d-- > 0;) {
      offset += info.strides[d];
      if (++index[d] < info.shape[d]) break;
      offset -= info.strides[d] * info.shape[d];
      index[d] = 0;
    }
  }
}

shape_t shape_of(const py::buffer_info& info) {
  return shape_t(info.shape.begin(), info.shape.end());
}

[[noreturn]] void refuse_type(const std::string& argument, const std::string& expected,
                              const std::string& got) {
  std::string message = argument + ": expected " + expected + ", got " + got;
  if (got == "float16")
    message +=
        " (float16 is taken only as the query, key and value of scaled_dot_product_attention "
        "and its backward; "
        "convert with .astype(numpy.float32))";
  else if (got == "float64")
    message += " (convert with .astype(numpy.float32))";
  throw py::type_error(message);
}

// Whether the kernels can read the buffer where it is (tensor_view's strides count elements).
bool readable_in_place(const py::buffer_info& info) {
  if (reinterpret_cast<uintptr_t>(info.ptr) % static_cast<uintptr_t>(info.itemsize) != 0)
    return false;
  for (py::ssize_t d = 0; d < info.ndim; ++d)
    if (info.strides[d] < 0 || info.strides[d] % info.itemsize != 0) return false;
  const py::ssize_t last = info.ndim - 1;
  return info.ndim == 0 || info.shape[last] == 1 || info.strides[last] == info.itemsize;
}

}  // namespace

input_buffer request_buffer(const std::string& argument, const py::handle& object,
                            const char* expected) {
  py::object source = py::reinterpret_borrow<py::object>(object);
  if (!PyObject_CheckBuffer(source.ptr())) {
    // Objects that NumPy can view without the buffer protocol (a CPU torch tensor has
    // __array__); anything else, such as a list, is refused rather than converted.
    if (!py::hasattr(source, "__array__"))
      throw py::type_error(argument +
                           ": expected a NumPy array or an object with the buffer protocol, got " +
                           std::string(py::str(py::type::of(source).attr("__name__"))));
    source = py::module_::import("numpy").attr("asarray")(source);
  }
  py::buffer_info info = py::reinterpret_borrow<py::buffer>(source).request();
  std::string_view format = info.format;
  if (!format.empty() && (format[0] == '>' || format[0] == '!'))
    throw py::type_error(argument + ": big-endian data is not supported (" + std::string(format) +
                         "); convert with .astype(numpy.float32)");
  if (!format.empty() && (format[0] == '@' || format[0] == '=' || format[0] == '<'))
    format.remove_prefix(1);
  element_type type;
  if (format == "f" && info.itemsize == 4)
    type = element_type::float32;
  else if (format == "e" && info.itemsize == 2)
    type = element_type::float16;
  else if (format == "?" && info.itemsize == 1)
    type = element_type::boolean;
  else
    refuse_type(argument, expected, dtype_name(format));
  return {std::move(info), type};
}

float_input::float_input(const std::string& argument, const py::handle& object, bool float16_too) {
  const char* expected = float16_too ? "float32 or float16" : "float32";
  input_buffer in = request_buffer(argument, object, expected);
  if (in.type == element_type::boolean || (in.type == element_type::float16 && !float16_too))
    refuse_type(argument, expected, in.type == element_type::float16 ? "float16" : "bool");
  const dtype type = in.type == element_type::float16 ? dtype::f16 : dtype::f32;
  info_ = std::move(in.info);
  const shape_t shape = shape_of(info_);
  if (readable_in_place(info_)) {
    shape_t strides(info_.strides.begin(), info_.strides.end());
    for (int64_t& s : strides) s /= static_cast<int64_t>(info_.itemsize);
    view_ = tensor_view(info_.ptr, type, shape, std::move(strides));
  } else {
    copy_.emplace(type, shape);
    if (type == dtype::f16)
      gather(info_, static_cast<uint16_t*>(copy_->data()));
    else
      gather(info_, static_cast<float*>(copy_->data()));
    view_ = *copy_;
  }
}

tensor float_tensor(const std::string& argument, const py::handle& object) {
  return float_input(argument, object).view().to_tensor();
}

attention_mask mask_input(const std::string& argument, const py::handle& object) {
  input_buffer in = request_buffer(argument, object, "bool or float32");
  attention_mask mask;
  if (in.type == element_type::boolean) {
    mask.boolean = bool_tensor(shape_of(in.info));
    gather(in.info, mask.boolean->data());
  } else if (in.type == element_type::float32) {
    mask.additive = tensor(shape_of(in.info));
    gather(in.info, mask.additive->data());
  } else {
    refuse_type(argument, "bool or float32", "float16");
  }
  return mask;
}

output_array::output_array(const shape_t& shape)
    : array(shape), view(array.mutable_data(), shape) {}

py::array to_numpy(tensor&& t) {
  auto* owned = new tensor(std::move(t));
  py::capsule owner(owned, [](void* p) { delete static_cast<tensor*>(p); });
  return py::array_t<float>(owned->shape(), owned->data(), owner);
}

run_options run_input(const std::string& impl, int threads) {
  return {parse_sdpa_impl(impl, "impl"), threads};
}

}  // namespace qkv::python
