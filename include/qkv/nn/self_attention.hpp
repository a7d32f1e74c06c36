// Single-head self-attention as the lessons teach it: Q = X·W_Q^T, K = X·W_K^T, V = X·W_V^T
// (nn.Linear layout, no bias), then O = softmax(Q·K^T / sqrt(d_k))·V, optionally causal.
// Not the multi-head layer (no heads, no output projection): that is multihead_attention.hpp.
#pragma once

#include <cstdint>

#include "qkv/tensor.hpp"

namespace qkv::nn {

// The three projections of one input: Q [.., N, d_k], K [.., N, d_k], V [.., N, d_v].
struct qkv_projections {
  tensor q, k, v;
};

class self_attention {
 public:
  // W_Q, W_K [d_k, d_model], W_V [d_v, d_model]: nn.Linear.weight's layout [out, in].
  // Throws qkv::error (naming wq, wk or wv and the shapes) when they do not fit together.
  self_attention(tensor w_q, tensor w_k, tensor w_v);

  int64_t d_model() const { return w_q_.size(1); }
  int64_t d_k() const { return w_q_.size(0); }
  int64_t d_v() const { return w_v_.size(0); }
  const tensor& w_q() const { return w_q_; }
  const tensor& w_k() const { return w_k_; }
  const tensor& w_v() const { return w_v_; }

  // X [N, d_model] or [B, N, d_model] -> Q, K, V with the same leading dimensions.
  qkv_projections project(const tensor& x) const;
  // X [N, d_model] or [B, N, d_model] -> O [.., N, d_v]. causal: token i sees tokens j <= i.
  tensor forward(const tensor& x, bool causal = false) const;
  // Also the attention weights P [.., N, N] (softmax rows), as need_weights=True would; runs
  // the reference kernel, which reports them.
  struct result {
    tensor out, weights;
  };
  result forward_with_weights(const tensor& x, bool causal = false) const;

 private:
  tensor w_q_, w_k_, w_v_;
};

}  // namespace qkv::nn
