// libFuzzer target: the .npy parser on arbitrary bytes. Any input must either parse or be refused
// with qkv::error; a crash, a sanitizer report, a hang or an allocation beyond the input's size
// (libFuzzer's -malloc_limit_mb) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qkv::io::parse_npy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  } catch (const qkv::error&) {
  }
  return 0;
}
