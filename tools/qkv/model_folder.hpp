// A Hugging Face GPT-2 folder given by --model: the model and its tokenizer, loaded with errors
// that name the flag; and text to ids under the model's limits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qkv/models/gpt2.hpp"
#include "qkv/text/gpt2_tokenizer.hpp"

namespace qkv::cli {

// DIR/config.json and DIR/model.safetensors.
models::gpt2 load_model_folder(const std::string& dir);
// DIR/vocab.json and DIR/merges.txt.
text::gpt2_tokenizer load_tokenizer_folder(const std::string& dir);
// The token ids of --ids IDS.npy (1-D, <i8 or <i4); errors name --ids.
std::vector<int64_t> read_ids_flag(const std::string& path);
// Throws qkv::error naming `flag` unless 1 <= ids.size() <= n_positions and every id < V.
void check_ids(const std::vector<int64_t>& ids, const models::gpt2_config& config,
               const std::string& flag);

}  // namespace qkv::cli
