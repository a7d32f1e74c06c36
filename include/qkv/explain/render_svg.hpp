// The attention weights of a trace as an SVG heatmap: one labelled grid per head, rows the
// queries, columns the keys, each cell coloured by its weight and showing it as a percentage.
#pragma once

#include <cstdint>
#include <string>

#include "qkv/explain/trace.hpp"

namespace qkv::explain {

// A standalone <svg> document (also embeddable in HTML). Each query-key pair is one
// <rect class="cell"> carrying data-query, data-key, data-score, data-scaled and data-weight
// (full precision) and a <title> tooltip; a key hidden by the causal mask has class "cell masked".
std::string render_svg(const attention_trace& trace);
// The grid of one head only.
std::string render_svg(const attention_trace& trace, int64_t head);

}  // namespace qkv::explain
