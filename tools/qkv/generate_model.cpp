// `qkv generate --model DIR`: GPT-2 sampling, one token per step through the model's KV cache
// (the prompt is fed once; each step then costs one token's projections), with the folder's
// tokenizer for the prompt and the output.
#include "generate_model.hpp"

#include <cstdio>

#include "model_folder.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/counter_rng.hpp"
#include "sampling.hpp"

namespace qkv::cli {

void run_generate_model(const std::string& dir, const std::string& prompt,
                        const sampling_options& o) {
  const models::gpt2 m = load_model_folder(dir);
  const text::gpt2_tokenizer tok = load_tokenizer_folder(dir);
  std::vector<int64_t> ids = tok.encode(prompt);
  check_ids(ids, m.config(), "--prompt");
  const int64_t context = m.config().positions;
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  models::gpt2_cache cache;
  std::vector<float> logits;
  size_t fed = 0;  // ids[0, fed) are in the cache
  for (int64_t n = 0; n < o.tokens; ++n) {
    if (static_cast<int64_t>(ids.size() - fed) + cache.length() > context) {
      // The window is full: restart the cache on the last half context of the text.
      cache = {};
      fed = ids.size() - static_cast<size_t>(context / 2);
    }
    while (fed < ids.size()) logits = m.decode_step(ids[fed++], cache, o.threads);
    const int64_t next = sample(logits, o.temperature, o.top_k,
                                nn::random_uniform(o.seed, 0, static_cast<uint64_t>(n)));
    ids.push_back(next);
    const std::string piece = tok.decode({&ids.back(), 1});
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  }
  std::fputc('\n', stdout);
}

}  // namespace qkv::cli
