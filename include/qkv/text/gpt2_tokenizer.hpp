// GPT-2's byte-level BPE tokenizer (Radford et al. 2019, section 2.2): the text's UTF-8 bytes,
// split into pieces by GPT-2's pre-tokenizer pattern, each piece merged pair by pair in the order
// of merges.txt, the results looked up in vocab.json. Every byte has a token, so any byte string
// encodes, and decode(encode(bytes)) == bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qkv::text {

// GPT-2's pre-tokenizer, the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with Python `regex` semantics: the first alternative that matches at a position wins; \p{L}
// and \p{N} are the Unicode letter and number categories and \s the Unicode White_Space
// property (so U+0085 is a space, U+FEFF and U+001C..U+001F are not). A byte that is not part of
// valid UTF-8 counts as neither letter, number nor space. Returns the pieces, covering `text`.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

class gpt2_tokenizer {
 public:
  // From the files of a Hugging Face GPT-2 folder. Throws qkv::error naming the file on a
  // missing or malformed file, a token outside GPT-2's byte alphabet, a merge of unknown tokens.
  static gpt2_tokenizer load(const std::string& vocab_json_path, const std::string& merges_path);
  // The same from the files' text; the paths name them in messages.
  static gpt2_tokenizer parse(std::string_view vocab_json, std::string_view merges,
                              const std::string& vocab_source, const std::string& merges_source);

  std::vector<int64_t> encode(std::string_view text) const;
  // The bytes of the tokens, concatenated. An id outside [0, vocab_size) is a qkv::error naming
  // `argument`, its position and value.
  std::string decode(std::span<const int64_t> ids, const std::string& argument = "ids") const;

  int64_t vocab_size() const { return static_cast<int64_t>(bytes_.size()); }

 private:
  struct merge {
    int32_t rank, result;
  };
  // The BPE of one piece: its bytes' tokens, merged while a ranked pair remains.
  void encode_piece(std::string_view piece, std::vector<int64_t>& out) const;

  std::vector<std::string> bytes_;              // id -> the token's bytes
  int32_t byte_token_[256] = {};                // byte -> its one-byte token
  std::unordered_map<uint64_t, merge> merges_;  // (left id, right id) -> rank, merged id
};

}  // namespace qkv::text
