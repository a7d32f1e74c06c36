// The machine-readable rendering of attention (docs/explain_json.md, schema version 1): one JSON
// object with the tokens as their own text, every shown head's weights and most attended key,
// and, when present, the walkthrough's steps, the word table and the attention rollout.
#pragma once

#include <string>

#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/trace.hpp"

namespace qkv::explain {

// The version written as "schema_version"; it changes whenever a key changes meaning or goes.
inline constexpr int json_schema_version = 1;

// Numbers are printed in the shortest form that reads back as the same double. Throws
// qkv::error if a value is not finite (JSON has no spelling for it; masked keys are the boolean
// matrix "masked", never a number).
std::string render_json(const attention_map& map);
// render_json(map_of_trace(trace)).
std::string render_json(const attention_trace& trace);

}  // namespace qkv::explain
