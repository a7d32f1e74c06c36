// The attention of a whole model on a text, independent of the model: the tokens, every shown
// (layer, head)'s weights [T,T], the words the tokens form, and the attention rollout across the
// layers. The summary, JSON, SVG and model-view renderings read this; a character-level GPT
// (checkpoint_trace.hpp), a GPT-2 folder or a single walkthrough (trace.hpp) fill it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qkv/explain/trace.hpp"

namespace qkv::explain {

// One head of one layer. `steps.weights` is always filled; the other steps (Q, K, V, scores,
// ...) only when the walkthrough of that head was traced.
struct map_head {
  int64_t layer = 0, head = 0;
  head_trace steps;
};

// A word: the tokens [first, last) whose text falls in it.
struct word_span {
  std::string text;
  int64_t first = 0, last = 0;
};

struct attention_map {
  std::string title;
  std::vector<std::string> tokens;  // each token's own text (bytes), in order
  std::vector<int64_t> ids;         // the vocabulary ids, when a model read the text
  bool causal = false;
  std::optional<double> scale;                // the score scale, when the walkthrough was traced
  matrix x;                                   // a walkthrough's encodings X, or empty
  int64_t model_layers = 0, model_heads = 0;  // the model's counts, shown or not
  std::vector<map_head> heads;                // the shown heads, layer by layer
  std::vector<word_span> words;               // empty: no word view
  matrix rollout;  // attention rollout over every layer of the model, or empty
};

// The words of the token texts: split on whitespace; a token belongs to the word holding its
// first non-whitespace character, a whitespace-only token to none. A token that starts a word
// ("jane" after " ", or GPT-2's " visits") starts a new word.
std::vector<word_span> group_words(const std::vector<std::string>& tokens);

// Token weights read as weights between words: A[p][q] = (1/|p|) Σ_{i∈p} Σ_{j∈q} P[i][j], the
// mean over the query word's tokens of the weight they give to all of the key word's tokens.
matrix aggregate_words(const matrix& weights, const std::vector<word_span>& words);
// The sentence that says how aggregate_words reads weights between words, for every rendering.
extern const char* const word_rule;

// Attention rollout (Abnar & Zuidema, 2020) of the layers' weights, layers[l][h] [T,T]:
// A_l = rows_normalised(mean_h(P_l,h) + I), rollout = A_{L-1} · ... · A_1 · A_0; row i says
// how much of each input token flows into token i's position after the last layer.
matrix attention_rollout(const std::vector<std::vector<matrix>>& layers);
extern const char* const rollout_rule;

// Which heads a map shows: one layer or all, one head or all; `steps` keeps every shown head's
// walkthrough (Q, K, V, scores, ...) beside its weights.
struct map_selection {
  std::optional<int64_t> layer, head;
  bool steps = false;
};

// The map of a model's attention, layers[l][h] (each head's weights [T,T], and its other steps
// when traced), on `tokens`: the selected heads and the rollout over all of them. The caller
// sets the title, ids and words. Throws qkv::error naming layer or head when the selection is
// beyond the model's counts.
attention_map map_of_layers(std::vector<std::vector<head_trace>> layers,
                            std::vector<std::string> tokens, bool causal,
                            const map_selection& selection);

// A single walkthrough as a map of one layer: its heads, tokens, scale, encodings.
attention_map map_of_trace(const attention_trace& trace);

}  // namespace qkv::explain
