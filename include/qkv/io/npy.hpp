// NumPy .npy files (format versions 1.0 to 3.0), docs/contracts.md section 4: little-endian <f4,
// <f8 (read as fp32), <f2 (float16: widened exactly to fp32, or kept as f16 storage by the
// *_stored readers) and |b1, C order. Anything else is refused with a qkv::error naming the file.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qkv/stored_tensor.hpp"
#include "qkv/tensor.hpp"

namespace qkv::io {

// A .npy array as read: float data (from <f4, <f8 or <f2) or a boolean array (|b1).
using npy_array = std::variant<tensor, bool_tensor>;

// Reads a regular file (see read_regular_file). Refused, naming `path`: a header that is not
// exactly NumPy's dict (each key once, no other key, integer shape entries), a shape whose element
// or byte count overflows, and data shorter or longer than the shape says.
npy_array read_npy(const std::string& path);
// The same from the bytes of a whole file; `path` names it in messages.
npy_array parse_npy(std::string_view bytes, const std::string& path);
// Reads a float array; a boolean file is refused (the message names `path`).
tensor read_npy_float(const std::string& path);
// A float array in the storage the kernels can read it from: <f2 kept as f16 (its bits copied),
// <f4 and <f8 as f32. A boolean file is refused.
stored_tensor read_npy_stored(const std::string& path);
stored_tensor parse_npy_stored(std::string_view bytes, const std::string& path);
// Reads token ids: a 1-D <i8 or <i4 array [T]. Anything else is refused naming `path`.
std::vector<int64_t> read_npy_ids(const std::string& path);

// Writes <f4 (or |b1), C order, version 1.0, to a temporary file renamed into place, so that a
// failure never leaves a partial file at `path`.
void write_npy(const std::string& path, const tensor& t);
void write_npy(const std::string& path, const bool_tensor& t);
// f32 as <f4, f16 as <f2 (its bits). bf16 has no .npy dtype: refused.
void write_npy(const std::string& path, const stored_tensor& t);

}  // namespace qkv::io
