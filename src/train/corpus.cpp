// Corpus files, vocabulary, split and batches.
#include "qkv/train/corpus.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "qkv/error.hpp"
#include "qkv/io/atomic_file.hpp"
#include "qkv/nn/counter_rng.hpp"

namespace qkv::train {

std::vector<std::string> fortune_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(dir, ec))
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      const std::string ext = e.path().extension().string();
      // *.u8 are symlinks to the UTF-8 copies of the same files; *.dat are strfile indexes.
      if (ext == ".dat" || ext == ".u8" || e.is_symlink() || !e.is_regular_file()) continue;
      files.push_back(e.path().string());
    }
  if (files.empty())
    throw error("--corpus: no fortune text files in " + dir +
                " (install them with `apt-get install fortunes`, or give any UTF-8 text file "
                "with --corpus FILE)");
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_text_files(const std::vector<std::string>& paths) {
  std::string text;
  for (const std::string& path : paths) {
    try {
      text += io::read_regular_file(path);
    } catch (const error& e) {
      throw error(std::string("--corpus: ") + e.what());
    }
  }
  return text;
}

vocabulary::vocabulary(const std::string& text) {
  bool seen[256] = {};
  for (const char c : text) seen[static_cast<uint8_t>(c)] = true;
  std::vector<uint8_t> symbols;
  for (int b = 0; b < 256; ++b)
    if (seen[b]) symbols.push_back(static_cast<uint8_t>(b));
  *this = from_symbols(std::move(symbols));
}

vocabulary vocabulary::from_symbols(std::vector<uint8_t> symbols) {
  vocabulary v;
  v.symbols_ = std::move(symbols);
  std::fill(std::begin(v.id_of_), std::end(v.id_of_), -1);
  for (size_t i = 0; i < v.symbols_.size(); ++i) v.id_of_[v.symbols_[i]] = static_cast<int32_t>(i);
  return v;
}

namespace {

// The byte at `offset` of `text` for a message: "'a' (byte 97)", or for a byte of a multi-byte
// UTF-8 character "byte 0xC3 of 'é'" (the whole character, when the bytes around form one).
std::string describe_byte(const std::string& text, size_t offset) {
  const auto byte = static_cast<uint8_t>(text[offset]);
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", byte);
  if (byte >= 0x20 && byte < 0x7f)
    return "'" + std::string(1, static_cast<char>(byte)) + "' (byte " + hex + ")";
  if (byte < 0x80) return std::string("byte ") + hex + " (a control character)";
  // Back to the lead byte (at most 3 continuation bytes 10xxxxxx), then the character's length.
  size_t lead = offset;
  while (lead > 0 && offset - lead < 3 && (static_cast<uint8_t>(text[lead]) & 0xC0) == 0x80) --lead;
  const auto first = static_cast<uint8_t>(text[lead]);
  const size_t length = first >= 0xF0 ? 4 : first >= 0xE0 ? 3 : first >= 0xC0 ? 2 : 0;
  bool whole = length > 0 && lead + length <= text.size() && offset < lead + length;
  for (size_t i = lead + 1; whole && i < lead + length; ++i)
    whole = (static_cast<uint8_t>(text[i]) & 0xC0) == 0x80;
  return std::string("byte ") + hex +
         (whole ? " of the character '" + text.substr(lead, length) + "'"
                : " (not part of a UTF-8 character)");
}

}  // namespace

std::vector<int32_t> vocabulary::encode(const std::string& text,
                                        const std::string& argument) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const int32_t id = id_of_[static_cast<uint8_t>(text[i])];
    if (id < 0)
      throw error(argument, "" + describe_byte(text, i) + " at byte offset " + std::to_string(i) +
                                " is not in the model's vocabulary of " + std::to_string(size()) +
                                " bytes (tokens are bytes)");
    ids.push_back(id);
  }
  return ids;
}

std::string vocabulary::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (const int32_t id : ids) text += static_cast<char>(symbols_[static_cast<size_t>(id)]);
  return text;
}

token_split split_tokens(const std::vector<int32_t>& tokens, double held_out_fraction) {
  const auto n_train =
      static_cast<size_t>(static_cast<double>(tokens.size()) * (1.0 - held_out_fraction));
  return {std::vector<int32_t>(tokens.begin(), tokens.begin() + static_cast<ptrdiff_t>(n_train)),
          std::vector<int32_t>(tokens.begin() + static_cast<ptrdiff_t>(n_train), tokens.end())};
}

batch sample_batch(const std::vector<int32_t>& tokens, int64_t B, int64_t T, uint64_t seed,
                   uint64_t step) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (n < T + 2)
    throw error("--corpus: " + std::to_string(n) + " tokens are too few for a context of " +
                std::to_string(T));
  batch out;
  out.x.resize(static_cast<size_t>(B * T));
  out.y.resize(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b) {
    const auto start = static_cast<int64_t>(nn::random_bits(seed, step, static_cast<uint64_t>(b)) %
                                            static_cast<uint64_t>(n - T));
    for (int64_t t = 0; t < T; ++t) {
      out.x[static_cast<size_t>(b * T + t)] = tokens[static_cast<size_t>(start + t)];
      out.y[static_cast<size_t>(b * T + t)] = tokens[static_cast<size_t>(start + t + 1)];
    }
  }
  return out;
}

}  // namespace qkv::train
