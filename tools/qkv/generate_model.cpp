// `qkv generate --model DIR`: GPT-2 sampling, one token per step through the model's KV cache
// (the prompt is fed once; each step then costs one token's projections), with the folder's
// tokenizer for the prompt and the output.
#include "generate_model.hpp"

#include <cstdio>

#include "model_folder.hpp"
#include "qkv/error.hpp"

namespace qkv::cli {

void run_generate_model(const std::string& dir, const std::string& prompt,
                        const sampling_options& o) {
  const models::gpt2 m = load_model_folder(dir);
  const text::gpt2_tokenizer tok = load_tokenizer_folder(dir);
  std::vector<int64_t> ids = tok.encode(prompt);
  check_ids(ids, m.config(), "--prompt");
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  generate_tokens<models::gpt2_cache>(
      ids, m.config().positions, o,
      [&](int64_t id, models::gpt2_cache& cache) { return m.decode_step(id, cache, o.threads); },
      [&](int64_t id) {
        const std::string piece = tok.decode({&id, 1});
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      });
  std::fputc('\n', stdout);
}

}  // namespace qkv::cli
