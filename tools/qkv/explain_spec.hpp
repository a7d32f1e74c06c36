// The inputs of one `qkv explain` walkthrough and how a JSON spec file gives them.
#pragma once

#include <optional>
#include <string>

#include "qkv/tensor.hpp"

namespace qkv::cli {

// Where the inputs come from ("" for the .npy flags), a title, X [N, d_model], the three
// weights, the token labels and the score scale (default 1/sqrt(d_k)).
struct explain_inputs {
  std::string source, title, tokens;
  tensor x, wq, wk, wv;
  std::optional<float> scale;
};

// A spec: {"tokens": [...], "encodings": X, "W_q_weight", "W_k_weight", "W_v_weight"} (rows;
// weights in nn.Linear's [out, in] layout) and optionally "scale", "title", "description";
// docs/attention.md lists the keys. Every number must be a finite float32; an unknown key is
// refused. Throws qkv::error starting with `argument` and naming the key.
explain_inputs inputs_from_json(const std::string& text, const std::string& argument);

// A scale must be finite and > 0; throws qkv::error naming `what` otherwise.
float checked_scale(double scale, const std::string& what);

}  // namespace qkv::cli
