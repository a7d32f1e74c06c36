// `qkv generate --model DIR`: sampling from a Hugging Face GPT-2 folder.
#pragma once

#include <cstdint>
#include <string>

namespace qkv::cli {

struct sampling_options {
  int64_t tokens = 0, top_k = 0;
  double temperature = 0;
  uint64_t seed = 0;
  int threads = 0;
};

// Prints the prompt, then each sampled token as it comes, through the model's KV cache.
void run_generate_model(const std::string& dir, const std::string& prompt,
                        const sampling_options& options);

}  // namespace qkv::cli
