// The terminal renderings: the walkthrough of an attention trace (the steps in order, as aligned
// tables labelled with the tokens, the first query's arithmetic spelled out, and who attends
// whom), and the learner's summary of a model map (word tables, each head's most attended word
// or token, the rollout).
#pragma once

#include <string>

#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/trace.hpp"

namespace qkv::explain {

struct text_options {
  bool colour = false;  // ANSI colours: a heatmap behind the weights, bold headings
  int64_t width = 100;  // the line width tables side by side are wrapped to
};

std::string render_text(const attention_trace& trace, const text_options& options = {});

// The map's summary. With words: each shown head's word table in full, then per layer a table of
// each word's most attended word and its weight, one column per head. Without words: that table
// for the tokens. Then the rollout's most attended token, when the map has a rollout.
std::string render_summary(const attention_map& map, const text_options& options = {});

}  // namespace qkv::explain
