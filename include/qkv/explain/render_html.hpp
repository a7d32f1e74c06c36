// Attention as self-contained HTML pages (no network): the walkthrough of one attention, and
// the model view of every layer and head.
#pragma once

#include <string>

#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/trace.hpp"

namespace qkv::explain {

// The walkthrough: the step-by-step panels, a heatmap per head, and every number's full value
// on hover. The page's script marks <body data-ready="true"> once its hover handlers are attached.
std::string render_html(const attention_trace& trace);

// The model view: a grid of every shown layer × head as thumbnails (.thumb, data-layer,
// data-head); clicking one opens it in the head view, where hovering a query token shows its row
// of weights; the word table when the map has words; the attention rollout with its rule. The
// data is render_json(map), embedded; the script draws from it and marks <body
// data-ready="true">.
std::string render_model_html(const attention_map& map);

}  // namespace qkv::explain
