// GPT-2's pre-tokenizer pattern (gpt2_tokenizer.hpp), matched by hand: at each position the
// alternatives are tried in order, as a backtracking regex engine would, over code points
// classified by ICU (letter, number, White_Space, other).
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "qkv/text/gpt2_tokenizer.hpp"

namespace qkv::text {
namespace {

enum class kind { letter, number, space, other };

struct code_point {
  size_t begin;  // byte offset in the text
  UChar32 c;     // negative for a byte that is not valid UTF-8
  kind k;
};

kind kind_of(UChar32 c) {
  if (c < 0) return kind::other;
  const uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK) return kind::letter;
  if (mask & U_GC_N_MASK) return kind::number;
  if (u_isUWhiteSpace(c)) return kind::space;
  return kind::other;
}

std::vector<code_point> code_points(std::string_view text) {
  std::vector<code_point> cps;
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const auto n = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < n;) {
    const int32_t begin = i;
    UChar32 c;
    U8_NEXT(s, i, n, c);  // an ill-formed sequence gives c < 0 and skips its maximal subpart
    cps.push_back({static_cast<size_t>(begin), c, kind_of(c)});
  }
  return cps;
}

// The length in code points of the contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
size_t contraction(const std::vector<code_point>& cps, size_t i) {
  const auto at = [&](size_t j, char ch) { return j < cps.size() && cps[j].c == ch; };
  if (!at(i, '\'')) return 0;
  if (at(i + 1, 's') || at(i + 1, 't') || at(i + 1, 'm') || at(i + 1, 'd')) return 2;
  if ((at(i + 1, 'r') || at(i + 1, 'v')) && at(i + 2, 'e')) return 3;
  if (at(i + 1, 'l') && at(i + 2, 'l')) return 3;
  return 0;
}

// The end of the run of code points of kind k starting at i.
size_t run_end(const std::vector<code_point>& cps, size_t i, kind k) {
  while (i < cps.size() && cps[i].k == k) ++i;
  return i;
}

// The end of the piece that starts at code point i.
size_t piece_end(const std::vector<code_point>& cps, size_t i) {
  const size_t n = cps.size();
  if (const size_t c = contraction(cps, i)) return i + c;
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020, then a run of one kind.
  for (const kind k : {kind::letter, kind::number, kind::other}) {
    if (cps[i].c == ' ' && i + 1 < n && cps[i + 1].k == k) return run_end(cps, i + 1, k);
    if (cps[i].k == k) return run_end(cps, i, k);
  }
  // `\s+(?!\S)`: the whitespace run, less its last space when a non-space follows it (so that
  // space can join the next piece); `\s+` when the run is a single space before a non-space.
  const size_t end = run_end(cps, i, kind::space);
  return end < n && end - i >= 2 ? end - 1 : end;
}

}  // namespace

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  const std::vector<code_point> cps = code_points(text);
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < cps.size();) {
    const size_t end = piece_end(cps, i);
    const size_t b = cps[i].begin, e = end < cps.size() ? cps[end].begin : text.size();
    pieces.push_back(text.substr(b, e - b));
    i = end;
  }
  return pieces;
}

}  // namespace qkv::text
