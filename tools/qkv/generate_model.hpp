// `qkv generate --model DIR`: sampling from a Hugging Face GPT-2 folder.
#pragma once

#include <string>

#include "sampling.hpp"

namespace qkv::cli {

// Prints the prompt, then each sampled token as it comes, through the model's KV cache.
void run_generate_model(const std::string& dir, const std::string& prompt,
                        const sampling_options& options);

}  // namespace qkv::cli
