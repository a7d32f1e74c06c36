// GPT-2's byte-level BPE: vocab.json and merges.txt spell tokens in GPT-2's byte alphabet (each
// byte one printable code point, bytes_to_unicode in OpenAI's encoder.py); they are read back to
// raw bytes here, so that encoding works on the text's bytes and merges on token ids.
#include "qkv/text/gpt2_tokenizer.hpp"

#include <unicode/utf8.h>

#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "qkv/error.hpp"
#include "qkv/io/atomic_file.hpp"

namespace qkv::text {
namespace {

// GPT-2's byte alphabet: the printable bytes ! .. ~, ¡ .. ¬, ® .. ÿ stand for themselves; the
// other 68 bytes, in order, for U+0100, U+0101, ... . Returns code point -> byte.
std::map<UChar32, uint8_t> unicode_to_byte() {
  std::map<UChar32, uint8_t> to_byte;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    to_byte[printable ? b : next++] = static_cast<uint8_t>(b);
  }
  return to_byte;
}

// The raw bytes `out` that a token spelled in the byte alphabet stands for; false when it is
// empty or a code point is outside the alphabet.
bool to_bytes(std::string_view spelled, const std::map<UChar32, uint8_t>& to_byte,
              std::string& out) {
  out.clear();
  const auto* s = reinterpret_cast<const uint8_t*>(spelled.data());
  const auto n = static_cast<int32_t>(spelled.size());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(s, i, n, c);
    const auto it = to_byte.find(c);
    if (c < 0 || it == to_byte.end()) return false;
    out.push_back(static_cast<char>(it->second));
  }
  return !out.empty();
}

uint64_t pair_key(int64_t left, int64_t right) {
  return static_cast<uint64_t>(left) << 32 | static_cast<uint64_t>(right);
}

}  // namespace

gpt2_tokenizer gpt2_tokenizer::load(const std::string& vocab_json_path,
                                    const std::string& merges_path) {
  const std::string vocab = io::read_regular_file(vocab_json_path);
  return parse(vocab, io::read_regular_file(merges_path), vocab_json_path, merges_path);
}

gpt2_tokenizer gpt2_tokenizer::parse(std::string_view vocab_json, std::string_view merges,
                                     const std::string& vocab_source,
                                     const std::string& merges_source) {
  const auto fail = [](const std::string& source, const std::string& why) {
    throw error("'" + source + "': " + why);
  };
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(vocab_json);
  } catch (const nlohmann::json::exception& e) {
    fail(vocab_source, std::string("not valid JSON: ") + e.what());
  }
  if (!vocab.is_object() || vocab.empty())
    fail(vocab_source, "expected a JSON object of token -> id");
  const auto to_byte = unicode_to_byte();
  gpt2_tokenizer t;
  const auto V = static_cast<int64_t>(vocab.size());
  if (V > std::numeric_limits<int32_t>::max()) fail(vocab_source, "too many tokens");
  t.bytes_.resize(static_cast<size_t>(V));
  std::unordered_map<std::string, int32_t> id_of;
  std::string raw;
  for (const auto& [spelled, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= V)
      fail(vocab_source, "token '" + spelled + "': id must be an integer in [0, " +
                             std::to_string(V) + "), got " + id.dump());
    if (!to_bytes(spelled, to_byte, raw))
      fail(vocab_source, "token '" + spelled + "' is not spelled in GPT-2's byte alphabet");
    std::string& slot = t.bytes_[id.get<size_t>()];
    if (!slot.empty() || id_of.count(raw))
      fail(vocab_source, "token '" + spelled + "' (id " + id.dump() + ") is given twice");
    slot = raw;
    id_of[raw] = id.get<int32_t>();
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = id_of.find(std::string(1, static_cast<char>(b)));
    if (it == id_of.end())
      fail(vocab_source,
           "no token for byte " + std::to_string(b) + " (byte-level BPE needs all 256)");
    t.byte_token_[b] = it->second;
  }

  size_t line_no = 0, begin = 0;
  int32_t rank = 0;
  std::string left, right;
  while (begin < merges.size()) {
    size_t end = merges.find('\n', begin);
    if (end == std::string_view::npos) end = merges.size();
    std::string_view line = merges.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    const std::string where = "line " + std::to_string(line_no) + " '" + std::string(line) + "'";
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos ||
        !to_bytes(line.substr(0, space), to_byte, left) ||
        !to_bytes(line.substr(space + 1), to_byte, right))
      fail(merges_source, where + ": expected two tokens of GPT-2's byte alphabet");
    const auto l = id_of.find(left), r = id_of.find(right), m = id_of.find(left + right);
    if (l == id_of.end() || r == id_of.end() || m == id_of.end())
      fail(merges_source,
           where + ": a token of the merge or its result is not in '" + vocab_source + "'");
    // A pair listed twice takes its last rank, as the reference's dict of the lines does.
    t.merges_[pair_key(l->second, r->second)] = merge{rank++, m->second};
  }
  return t;
}

void gpt2_tokenizer::encode_piece(std::string_view piece, std::vector<int64_t>& out) const {
  std::vector<int32_t> word, next;
  for (const char c : piece) word.push_back(byte_token_[static_cast<uint8_t>(c)]);
  while (word.size() >= 2) {
    // The best-ranked adjacent pair; then every occurrence of it merges, left to right.
    const merge* best = nullptr;
    uint64_t best_key = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const uint64_t key = pair_key(word[i], word[i + 1]);
      const auto it = merges_.find(key);
      if (it != merges_.end() && (!best || it->second.rank < best->rank)) {
        best = &it->second;
        best_key = key;
      }
    }
    if (!best) break;
    next.clear();
    for (size_t i = 0; i < word.size(); ++i) {
      if (i + 1 < word.size() && pair_key(word[i], word[i + 1]) == best_key) {
        next.push_back(best->result);
        ++i;
      } else {
        next.push_back(word[i]);
      }
    }
    word.swap(next);
  }
  out.insert(out.end(), word.begin(), word.end());
}

std::vector<int64_t> gpt2_tokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string_view piece : gpt2_pretokenize(text)) encode_piece(piece, ids);
  return ids;
}

std::string gpt2_tokenizer::decode(std::span<const int64_t> ids,
                                   const std::string& argument) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size())
      throw error(argument, "id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                " is outside the vocabulary [0, " + std::to_string(vocab_size()) +
                                ")");
    text += bytes_[static_cast<size_t>(ids[i])];
  }
  return text;
}

}  // namespace qkv::text
