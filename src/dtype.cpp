// The names and sizes of the storage types (qkv/dtype.hpp).
#include "qkv/dtype.hpp"

#include "qkv/error.hpp"

namespace qkv {

const char* to_string(dtype type) {
  switch (type) {
    case dtype::f16:
      return "f16";
    case dtype::bf16:
      return "bf16";
    default:
      return "f32";
  }
}

dtype parse_dtype(const std::string& text, const std::string& argument) {
  for (dtype type : {dtype::f32, dtype::f16, dtype::bf16})
    if (text == to_string(type)) return type;
  throw error(argument, "expected f32, f16 or bf16, got '" + text + "'");
}

int64_t size_in_bytes(dtype type) {
  return type == dtype::f32 ? 4 : 2;
}

}  // namespace qkv
