// Scaled dot-product attention, the public C++ API:
//   S = scale·Q·K^T + bias,  P = softmax_rows(S),  O = P·V,  lse = logsumexp_rows(S).
// One dispatcher over strided views (tensor_view.hpp): it validates every input, fills the
// kernels' parameter struct and calls the reference (reference.hpp) or the fused kernel
// (fused.hpp). Every caller in the library (layers, KV cache, explain) goes through it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "qkv/attention_params.hpp"
#include "qkv/run_options.hpp"
#include "qkv/score_modifiers.hpp"
#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv {

class attention_observer;

// "reference" | "fused" | "auto"; throws qkv::error naming `argument` otherwise.
sdpa_impl parse_sdpa_impl(const std::string& text, const std::string& argument = "--impl");
const char* to_string(sdpa_impl impl);
// "none" | "top-left" | "bottom-right"
causal_mode parse_causal_mode(const std::string& text, const std::string& argument = "--causal");
const char* to_string(causal_mode mode);

// An optional explicit mask of rank 2..4 that broadcasts to [B,Hq,Nq,Nk] (NumPy rules).
struct attention_mask {
  std::optional<bool_tensor> boolean;  // true (nonzero) = may attend
  std::optional<tensor> additive;      // added to S; -inf allowed
  bool empty() const { return !boolean && !additive; }
};

struct sdpa_options {
  std::optional<float> scale;  // default 1/sqrt(d); must be finite and > 0
  causal_mode causal = causal_mode::none;
  attention_mask mask;
  run_options run;  // the kernel (auto: fused, unless an observer is given) and threads
  // Receives the reference kernel's intermediates (reference.hpp); runs the reference kernel
  // (auto picks it; fused is refused). Forward only.
  attention_observer* observer = nullptr;
  // Dropout on the attention weights, O = (P ⊙ M/(1-p))·V; lse stays that of the un-dropped
  // scores. 0 <= dropout_p < 1 (0 = off); the mask is a pure function of (dropout_seed, b, h, i,
  // j).
  float dropout_p = 0.0f;
  uint64_t dropout_seed = 0;
  score_modifiers modifiers;  // window, softcap, ALiBi slopes, sinks (docs/attention.md)
};

// The allocated results of sdpa_forward.
struct sdpa_result {
  tensor out;  // [B,Hq,Nq,dv]
  tensor lse;  // [B,Hq,Nq]
  // What the backward recomputes P from (attention_params::row_max, row_log_sum), [B,Hq,Nq]
  // each. A result built from out and lse alone (empty tensors here) still works: the backward
  // then takes m = lse, log l = 0, exact except where |lse| is so large that fp32 rounds log l.
  tensor row_max = {}, row_log_sum = {};
};

// Where sdpa_forward_into writes: O [B,Hq,Nq,dv] and, when given, lse [B,Hq,Nq]. Any strides
// whose elements do not overlap (e.g. O straight into a [B,Nq,Hq,dv] buffer).
struct sdpa_output_views {
  mutable_tensor_view out;
  std::optional<mutable_tensor_view> lse = std::nullopt;
  // The row statistics of sdpa_result (both or neither; only with lse, and with lse's strides).
  std::optional<mutable_tensor_view> row_max = std::nullopt, row_log_sum = std::nullopt;
};

// What the backward reads of its forward: O [B,Hq,Nq,dv], lse [B,Hq,Nq] and, when kept, the row
// statistics of sdpa_result (with lse's shape and strides; without them m = lse, log l = 0).
struct sdpa_saved {
  tensor_view out, lse;
  std::optional<tensor_view> row_max, row_log_sum;
  sdpa_saved(tensor_view out_, tensor_view lse_) : out(std::move(out_)), lse(std::move(lse_)) {}
  sdpa_saved(const sdpa_result& r) : out(r.out), lse(r.lse) {  // NOLINT: implicit
    if (r.row_max.numel() || r.row_log_sum.numel()) {
      row_max = tensor_view(r.row_max);
      row_log_sum = tensor_view(r.row_log_sum);
    }
  }
};

struct sdpa_gradients {
  tensor dq;           // [B,Hq,Nq,d]
  tensor dk;           // [B,Hkv,Nk,d]
  tensor dv;           // [B,Hkv,Nk,dv]
  tensor dsinks = {};  // [Hq] with sinks, else empty
};

// Where sdpa_backward_into writes dQ, dK, dV (overwritten; non-overlapping strides).
struct sdpa_gradient_views {
  mutable_tensor_view dq, dk, dv;
  std::optional<mutable_tensor_view> dsinks =
      std::nullopt;  // [Hq], required exactly when options.modifiers.sinks is set
};

// The dispatcher. Every entry point validates every input (a qkv::error naming the argument,
// the rule and the shapes), fills the kernel's parameter struct from the views' strides, picks
// the kernel (options.impl; auto = fused unless an observer asks for the reference's steps) and
// runs it. Inputs: Q [B,Hq,Nq,d], K [B,Hkv,Nk,d], V [B,Hkv,Nk,dv], f32, any non-negative
// strides with stride 1 along the last dimension (the kernels read rows in place).

// O and lse, allocated.
sdpa_result sdpa_forward(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                         const sdpa_options& options = {});
// O and lse (if asked) written into the caller's views.
void sdpa_forward_into(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                       const sdpa_output_views& out, const sdpa_options& options = {});

// The attention weights P [B,Hq,Nq,Nk], the softmax rows per head (un-dropped under dropout):
// the reference kernel's own P, the one it multiplies V by. Also writes O (and lse) into `out`.
tensor sdpa_forward_with_weights(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                                 const sdpa_output_views& out, const sdpa_options& options = {});

// Gradients of L = sum(O * grad_out), grad_out [B,Hq,Nq,dv]. `forward` is O and lse of
// sdpa_forward on the same inputs and options.
sdpa_gradients sdpa_backward(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                             const sdpa_saved& forward, const tensor_view& grad_out,
                             const sdpa_options& options = {});
void sdpa_backward_into(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                        const sdpa_saved& forward, const tensor_view& grad_out,
                        const sdpa_gradient_views& grads, const sdpa_options& options = {});

// The dispatcher's checks and the parameter struct they fill (pointers into the views; outputs
// left null with the strides of row-major [B,Hq,Nq,dv] and [B,Hq,Nq]). Exposed for the kernels'
// own tests and tools that run one kernel directly.
attention_params make_attention_params(const tensor_view& q, const tensor_view& k,
                                       const tensor_view& v, const sdpa_options& options);

}  // namespace qkv
