// The terminal rendering of an attention trace: the steps in order, as aligned tables labelled
// with the tokens, the first query's arithmetic spelled out, and a summary of who attends whom.
#pragma once

#include <string>

#include "qkv/explain/trace.hpp"

namespace qkv::explain {

struct text_options {
  bool colour = false;  // ANSI colours: a heatmap behind the weights, bold headings
};

std::string render_text(const attention_trace& trace, const text_options& options = {});

}  // namespace qkv::explain
