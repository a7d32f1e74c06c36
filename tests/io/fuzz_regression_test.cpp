// The fuzzers' seeds and every input they ever found a problem with (fuzz/corpus/<target>/,
// fuzz/regressions/<target>/), run through the same parsers in the ordinary suite: each input
// must parse or be refused with qkv::error (this build's sanitizers, in scripts/sanitize.sh,
// catch what a plain build would not).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "qkv/error.hpp"
#include "qkv/explain/example.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/train/trainer.hpp"

namespace qkv {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_of(const std::string& target) {
  std::vector<fs::path> files;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = fs::path(QKV_FUZZ_DIR) / kind / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  }
  return files;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `parse` on every input of `target`: those named ok_* must be accepted, every other one
// (the malformed seeds, the findings) refused with qkv::error.
template <class Parse>
void run_inputs(const std::string& target, Parse parse) {
  const auto files = inputs_of(target);
  ASSERT_FALSE(files.empty()) << "no seed corpus for " << target << " in " << QKV_FUZZ_DIR;
  for (const fs::path& f : files) {
    const bool valid = f.filename().string().rfind("ok_", 0) == 0;
    bool accepted = true;
    try {
      parse(f);
    } catch (const error& e) {
      accepted = false;
      EXPECT_NE(std::string(e.what()).find(f.string()), std::string::npos) << e.what();
    }
    EXPECT_EQ(accepted, valid) << f.string();
  }
}

TEST(FuzzRegressions, Npy) {
  run_inputs("npy", [](const fs::path& f) { io::parse_npy(slurp(f), f.string()); });
}

TEST(FuzzRegressions, Safetensors) {
  run_inputs("safetensors", [](const fs::path& f) { io::parse_safetensors(slurp(f), f.string()); });
}

TEST(FuzzRegressions, ExplainSpec) {
  run_inputs("explain_spec",
             [](const fs::path& f) { explain::parse_example(slurp(f), f.string()); });
}

TEST(FuzzRegressions, Checkpoint) {
  run_inputs("checkpoint", [](const fs::path& f) { train::load_trained_model(f.string()); });
}

}  // namespace
}  // namespace qkv
