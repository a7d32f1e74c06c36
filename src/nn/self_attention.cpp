// Single-head self-attention: three bias-free projections, then scaled dot-product attention.
// Legend: B batch, N tokens, E = d_model, r a row of X (over B·N), o an output feature.
#include "qkv/nn/self_attention.hpp"

#include "qkv/attention.hpp"
#include "qkv/error.hpp"

namespace qkv::nn {
namespace {

void require_matrix(const char* name, const char* layout, const tensor& w) {
  if (w.rank() != 2 || w.size(0) < 1 || w.size(1) < 1)
    throw error(name,
                std::string("expected a matrix ") + layout + ", got shape " + to_string(w.shape()));
}

// Y = X·W^T in nn.Linear's layout (W [out, E]), accumulated in float64: Y[r,o] = sum_c
// X[r,c]·W[o,c].
tensor linear_no_bias(const tensor& x, const tensor& w) {
  const int64_t E = w.size(1), out = w.size(0), rows = x.numel() / E;
  shape_t shape = x.shape();
  shape.back() = out;
  tensor y(shape);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0.0;
      for (int64_t c = 0; c < E; ++c) acc += static_cast<double>(x[r * E + c]) * w[o * E + c];
      y[r * out + o] = static_cast<float>(acc);
    }
  return y;
}

// [N, f] or [B, N, f] -> [B, 1, N, f], the one-head layout of sdpa_forward.
tensor as_one_head(const tensor& t) {
  const int64_t B = t.rank() == 3 ? t.size(0) : 1;
  return t.reshaped({B, 1, t.size(-2), t.size(-1)});
}

sdpa_options options_for(bool causal) {
  sdpa_options options;
  options.causal = causal ? causal_mode::top_left : causal_mode::none;
  return options;
}

}  // namespace

self_attention::self_attention(tensor w_q, tensor w_k, tensor w_v)
    : w_q_(std::move(w_q)), w_k_(std::move(w_k)), w_v_(std::move(w_v)) {
  require_matrix("wq", "W_Q [d_k, d_model]", w_q_);
  require_matrix("wk", "W_K [d_k, d_model]", w_k_);
  require_matrix("wv", "W_V [d_v, d_model]", w_v_);
  const std::string shapes = " (wq " + to_string(w_q_.shape()) + ", wk " + to_string(w_k_.shape()) +
                             ", wv " + to_string(w_v_.shape()) + ")";
  if (w_k_.shape() != w_q_.shape())
    throw error("wk", "W_K must have W_Q's shape [d_k, d_model]" + shapes);
  if (w_v_.size(1) != w_q_.size(1))
    throw error("wv", "W_V [d_v, d_model] must have W_Q's d_model" + shapes);
}

qkv_projections self_attention::project(const tensor& x) const {
  if ((x.rank() != 2 && x.rank() != 3) || x.size(-1) != d_model() || x.size(-2) < 1)
    throw error("x", "expected X [N, d_model] or [B, N, d_model] with d_model = " +
                         std::to_string(d_model()) + " (the columns of wq " +
                         to_string(w_q_.shape()) + "), got shape " + to_string(x.shape()));
  return {linear_no_bias(x, w_q_), linear_no_bias(x, w_k_), linear_no_bias(x, w_v_)};
}

tensor self_attention::forward(const tensor& x, bool causal) const {
  const qkv_projections p = project(x);
  shape_t out_shape = x.shape();
  out_shape.back() = d_v();
  return sdpa_forward(as_one_head(p.q), as_one_head(p.k), as_one_head(p.v), options_for(causal))
      .out.reshaped(out_shape);
}

self_attention::result self_attention::forward_with_weights(const tensor& x, bool causal) const {
  const qkv_projections p = project(x);
  const tensor q = as_one_head(p.q);
  shape_t out_shape = x.shape(), weights_shape = x.shape();
  out_shape.back() = d_v();
  weights_shape.back() = q.size(2);
  result r{tensor(out_shape), {}};
  const mutable_tensor_view out(r.out.data(), {q.size(0), 1, q.size(2), d_v()});
  // P [B,1,N,N] -> [.., N, N].
  r.weights = sdpa_forward_with_weights(q, as_one_head(p.k), as_one_head(p.v), {out, {}},
                                        options_for(causal))
                  .reshaped(weights_shape);
  return r;
}

}  // namespace qkv::nn
