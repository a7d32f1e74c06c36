// Attention weights as an SVG heatmap: one labelled grid per head, rows the queries, columns the
// keys, each cell coloured by its weight, the heads laid out in a grid that wraps.
#pragma once

#include <cstdint>
#include <string>

#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/trace.hpp"

namespace qkv::explain {

// A standalone <svg> document (also embeddable in HTML). Each query-key pair is one
// <rect class="cell"> carrying data-query, data-key and data-weight (full precision; with a
// walkthrough also data-score and data-scaled) and a <title> tooltip; a key hidden by the
// causal mask has class "cell masked". Small grids print each weight as a percentage in its
// cell; larger ones leave it to the tooltip.
std::string render_svg(const attention_trace& trace);
// The grid of one head only.
std::string render_svg(const attention_trace& trace, int64_t head);
// Every shown head of a map, a row of the grid per layer (wrapped when wide); with words, their
// word tables first, then the token grids.
std::string render_svg(const attention_map& map);

}  // namespace qkv::explain
