// Loading a --model folder.
#include "model_folder.hpp"

#include "inputs.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"

namespace qkv::cli {

models::gpt2 load_model_folder(const std::string& dir) {
  return read_for_flag("--model", [&] { return models::gpt2::load(dir); });
}

text::gpt2_tokenizer load_tokenizer_folder(const std::string& dir) {
  return read_for_flag("--model", [&] {
    return text::gpt2_tokenizer::load(dir + "/vocab.json", dir + "/merges.txt");
  });
}

std::vector<int64_t> read_ids_flag(const std::string& path) {
  return read_for_flag("--ids", [&] { return io::read_npy_ids(path); });
}

void check_ids(const std::vector<int64_t>& ids, const models::gpt2_config& config,
               const std::string& flag) {
  const auto T = static_cast<int64_t>(ids.size());
  if (T < 1 || T > config.positions)
    throw error(flag + ": " + std::to_string(T) +
                " tokens; the model takes 1 to n_positions = " + std::to_string(config.positions));
  for (int64_t t = 0; t < T; ++t)
    if (ids[t] < 0 || ids[t] >= config.vocab)
      throw error(flag + ": id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                  " is outside the vocabulary [0, " + std::to_string(config.vocab) + ")");
}

}  // namespace qkv::cli
