// A byte-level text corpus for language-model training: the bytes of one or more files (one
// token per byte: a UTF-8 character beyond ASCII is several tokens), a vocabulary of the distinct
// bytes that occur, the split into training and held-out parts, and
// the batches drawn from them (by the counter-based generator, so a batch is a function of the
// step alone).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qkv::train {

inline constexpr const char* default_fortunes_dir = "/usr/share/games/fortunes";

// The text files of Debian's `fortunes` packages under `dir`, sorted: every regular file except
// the *.dat indexes and the *.u8 links. Throws qkv::error telling how to install them when none
// are found.
std::vector<std::string> fortune_files(const std::string& dir = default_fortunes_dir);
// The concatenated bytes of the files. Throws qkv::error naming a file that cannot be read.
std::string read_text_files(const std::vector<std::string>& paths);

// Token ids are the ranks of the distinct bytes of a text (so the vocabulary is its byte alphabet).
class vocabulary {
 public:
  vocabulary() = default;
  explicit vocabulary(const std::string& text);
  // From the sorted distinct bytes, e.g. as stored in a checkpoint.
  static vocabulary from_symbols(std::vector<uint8_t> symbols);

  int64_t size() const { return static_cast<int64_t>(symbols_.size()); }
  const std::vector<uint8_t>& symbols() const { return symbols_; }
  // The id of `byte`, or -1 when it is not in the vocabulary.
  int32_t id_of(uint8_t byte) const { return id_of_[byte]; }
  // Throws qkv::error naming `argument`, the byte and the character it belongs to, for a byte
  // that is not in the vocabulary.
  std::vector<int32_t> encode(const std::string& text, const std::string& argument) const;
  std::string decode(const std::vector<int32_t>& ids) const;

 private:
  std::vector<uint8_t> symbols_;
  int32_t id_of_[256] = {};  // -1 for bytes outside the vocabulary
};

// A contiguous training part (the first 1 − held_out of the tokens) and held-out part (the rest).
struct token_split {
  std::vector<int32_t> train, held_out;
};
token_split split_tokens(const std::vector<int32_t>& tokens, double held_out_fraction);

// B windows of T + 1 tokens: inputs x[b,t] = tokens[s_b + t], targets y[b,t] = tokens[s_b + t + 1],
// the starts s_b drawn uniformly by random_bits(seed, step, b).
struct batch {
  std::vector<int32_t> x, y;  // [B,T] row-major
};
batch sample_batch(const std::vector<int32_t>& tokens, int64_t B, int64_t T, uint64_t seed,
                   uint64_t step);

}  // namespace qkv::train
