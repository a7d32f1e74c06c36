// The element types an input of the attention kernels may be stored in. Every kernel computes
// in fp32 (the reference in float64) and writes fp32; f16 (IEEE binary16) and bf16 (bfloat16)
// are storage formats that the kernels widen exactly as they read them (qkv/half.hpp).
#pragma once

#include <cstdint>
#include <string>

namespace qkv {

enum class dtype : uint8_t { f32, f16, bf16 };

// "f32", "f16", "bf16": the names the command line, the bench and the docs use.
const char* to_string(dtype type);
// The dtype named `text` (one of the names above); throws qkv::error naming `argument` otherwise.
dtype parse_dtype(const std::string& text, const std::string& argument);
int64_t size_in_bytes(dtype type);

}  // namespace qkv
