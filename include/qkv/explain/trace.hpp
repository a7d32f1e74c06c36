// The step-by-step trace of one attention computation, as the library computes it: the inputs,
// and every intermediate the reference kernel reports to its observer (reference.hpp). The
// renderers (render_*.hpp) only format a trace; they never compute.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qkv/nn/self_attention.hpp"
#include "qkv/tensor.hpp"

namespace qkv::explain {

// A row-major matrix of float64 values (exact copies of the fp32 inputs, or the kernel's own
// float64 intermediates).
struct matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> values;
  double operator()(int64_t i, int64_t j) const {
    return values[static_cast<size_t>(i * cols + j)];
  }
  bool empty() const { return values.empty(); }
};

// One head: Q [N,d], K [N,d], V [N,dv]; the kernel's scores Q·K^T, scaled scale·Q·K^T, masked
// (scaled with -inf on hidden keys) and weights softmax_rows(masked) [N,N]; output P·V [N,dv].
struct head_trace {
  matrix q, k, v, scores, scaled, masked, weights, output;
};

struct attention_trace {
  std::string title;                // what is being explained, e.g. the example's name
  std::vector<std::string> tokens;  // one label per token (row)
  double scale = 1.0;
  bool causal = false;
  matrix x;                       // the encodings X [N, d_model]; empty when Q, K, V were given
  std::vector<head_trace> heads;  // one per head
};

// Attention of given per-head Q [H,N,d] (or [N,d] for one head), K [H,N,d], V [H,N,dv], with
// `scale` (default 1/sqrt(d); finite and > 0), causal (top-left) or not. Any model's per-layer,
// per-head projections can be explained this way. tokens: one label per token, or empty for t0, t1,
// ... Throws qkv::error naming q, k, v or tokens.
attention_trace trace_attention(const tensor& q, const tensor& k, const tensor& v,
                                std::vector<std::string> tokens, bool causal,
                                std::optional<float> scale = std::nullopt);

// The single-head self-attention layer on X [N, d_model]: its projections, then attention.
attention_trace trace_self_attention(const nn::self_attention& layer, const tensor& x,
                                     std::vector<std::string> tokens, bool causal,
                                     std::optional<float> scale = std::nullopt);

// "a b c" -> {"a", "b", "c"}: token labels split on whitespace.
std::vector<std::string> split_tokens(const std::string& text);

}  // namespace qkv::explain
