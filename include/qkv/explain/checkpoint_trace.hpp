// Explaining a character-level GPT (nn/gpt.hpp): one layer's attention heads on a text, every
// character a token, and the character weights aggregated into a table between words.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qkv/explain/trace.hpp"
#include "qkv/nn/gpt.hpp"

namespace qkv::explain {

// One label per byte of `text`: a space shows as "␣", a newline as "\n", other control or
// non-ASCII bytes as "\xNN", so that every label is visible.
std::vector<std::string> character_labels(const std::string& text);

// Block `layer`'s attention (causal, as the GPT is a decoder) when `model` reads `ids`, the
// vocabulary ids of the bytes of `text`: every head, or only `head`. The heads' Q, K, V are the
// model's own projections; the rest comes from the reference kernel (trace_attention). Throws
// qkv::error naming text, layer or head and the model's counts.
attention_trace trace_gpt_layer(const nn::gpt& model, const std::vector<int32_t>& ids,
                                const std::string& text, int64_t layer,
                                std::optional<int64_t> head);

// Character attention read as attention between the words of `text` (split on spaces; the
// spaces belong to no word): A[p][q] = (1/|p|) Σ_{i∈p} Σ_{j∈q} P[i][j], the mean over the query
// word's characters of the weight they give to all of the key word's characters.
struct word_table {
  std::vector<std::string> words;
  matrix weights;  // A [W,W]
};
word_table aggregate_words(const matrix& weights, const std::string& text);

// The sentence that says how word_table is computed, for every rendering.
extern const char* const word_table_rule;

// "For the word p, the most related word is q, with probability A[p][q]", one line per word,
// under a heading per head when there are several.
std::string render_word_tables(const std::vector<word_table>& tables);
// render_json(trace) with "word_rule" and "word_tables": [{"words", "weights", "summary":
// [{"query", "key", "probability"}]}], one per head.
std::string render_json_with_words(const attention_trace& trace,
                                   const std::vector<word_table>& tables);

}  // namespace qkv::explain
