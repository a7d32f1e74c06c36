// libFuzzer target: loading a `qkv train` checkpoint (a .safetensors file of model, optimiser and
// training state) from arbitrary bytes, through the public loader that `qkv generate` and
// `qkv explain --checkpoint` use. The loader reads a path, so each input is written to one
// temporary file first.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "qkv/error.hpp"
#include "qkv/train/trainer.hpp"

namespace {

const std::string& scratch_path() {
  static const std::string path = [] {
    std::string p = "/tmp/qkv-fuzz-checkpoint-XXXXXX";
    const int fd = mkstemp(p.data());
    if (fd < 0) std::abort();
    ::close(fd);
    std::atexit([] { std::remove(scratch_path().c_str()); });
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = scratch_path();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    qkv::train::load_trained_model(path);
  } catch (const qkv::error&) {
  }
  return 0;
}
