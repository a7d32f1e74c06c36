// The inputs of a walkthrough written as JSON (an explain spec), and the "Write a poem" example
// compiled into the library: the default of `qkv explain` and of Python's qkv.explain().
#pragma once

#include <string>

#include "qkv/tensor.hpp"

namespace qkv::explain {

// X [N, d_model], W_Q and W_K [d_k, d_model], W_V [d_v, d_model] (nn.Linear's layout), the
// token labels ("a b c"; empty for t0, t1, ...) and a title (may be empty).
struct example {
  std::string title, tokens;
  tensor x, wq, wk, wv;
};

// {"title"?, "tokens"?, "encodings", "W_q_weight", "W_k_weight", "W_v_weight"} (matrices as
// lists of rows), as tests/data/examples/statquest_write_a_poem.json. Throws qkv::error naming
// `source` and the key.
example parse_example(const std::string& json_text, const std::string& source);

// The StatQuest "Write a poem" example (weights from PyTorch, torch.manual_seed(42)), titled.
example write_a_poem();

}  // namespace qkv::explain
