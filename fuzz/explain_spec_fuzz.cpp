// libFuzzer target: the explain spec parser (`qkv explain --spec FILE.json`, Python's
// qkv.explain(spec=...)) on arbitrary text (see npy_fuzz.cpp for what counts as a finding).
#include <cstddef>
#include <cstdint>
#include <string>

#include "qkv/error.hpp"
#include "qkv/explain/example.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qkv::explain::parse_example(std::string(reinterpret_cast<const char*>(data), size),
                                "fuzz.json");
  } catch (const qkv::error&) {
  }
  return 0;
}
