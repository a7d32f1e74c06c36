// The inputs of a walkthrough written as JSON (an explain spec), and the "Write a poem" example
// compiled into the library: the default of `qkv explain` and of Python's qkv.explain().
#pragma once

#include <optional>
#include <string>

#include "qkv/tensor.hpp"

namespace qkv::explain {

// X [N, d_model], W_Q and W_K [d_k, d_model], W_V [d_v, d_model] (nn.Linear's layout), the
// token labels ("a b c"; empty for t0, t1, ...), a title (may be empty) and the score scale
// (default 1/sqrt(d_k)).
struct example {
  std::string title, tokens;
  tensor x, wq, wk, wv;
  std::optional<float> scale;
};

// {"encodings", "W_q_weight", "W_k_weight", "W_v_weight"} (matrices as lists of rows) and
// optionally "tokens", "scale", "title" or "description" (the title), as
// tests/data/examples/statquest_write_a_poem.json; docs/attention.md lists every key. Every
// number must be a finite float32 and the scale > 0; an unknown key is refused. Throws
// qkv::error naming `source` and the key.
example parse_example(const std::string& json_text, const std::string& source);

// A score scale: finite, > 0 and a float32; throws qkv::error naming `what` otherwise.
float checked_scale(double scale, const std::string& what);

// The StatQuest "Write a poem" example (weights from PyTorch, torch.manual_seed(42)), titled.
example write_a_poem();

}  // namespace qkv::explain
