// libFuzzer target: the .safetensors parser on arbitrary bytes (see npy_fuzz.cpp for what counts
// as a finding).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qkv/error.hpp"
#include "qkv/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qkv::io::parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size),
                               "fuzz.safetensors");
  } catch (const qkv::error&) {
  }
  return 0;
}
