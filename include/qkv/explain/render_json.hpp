// The machine-readable rendering of an attention trace (DESIGN section 5): one JSON object with
// the tokens, the scale, the causal flag and every intermediate as a list of rows.
#pragma once

#include <string>

#include "qkv/explain/trace.hpp"

namespace qkv::explain {

// {"tokens", "scale", "causal", "steps": {"X", "Q", "K", "V", "scores", "scaled", "weights",
// "output"}, "summary"}, plus "masked" (-inf as null) when causal, "heads" (every head's steps)
// when there are several (then "steps" is head 0's), and "title". Numbers are printed in the
// shortest form that reads back as the same double.
std::string render_json(const attention_trace& trace);

}  // namespace qkv::explain
