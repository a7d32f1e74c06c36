// An attention trace as one self-contained HTML page (no network): the step-by-step panels, a
// heatmap per head, and every number's full value on hover.
#pragma once

#include <string>

#include "qkv/explain/trace.hpp"

namespace qkv::explain {

// The page's script marks <body data-ready="true"> once its hover handlers are attached.
std::string render_html(const attention_trace& trace);

}  // namespace qkv::explain
