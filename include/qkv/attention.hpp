// Scaled dot-product attention, the public C++ API:
//   S = scale·Q·K^T + bias,  P = softmax_rows(S),  O = P·V,  lse = logsumexp_rows(S).
// Validates every input (throwing qkv::error that names the argument, the rule and the shapes),
// allocates the outputs and dispatches to a kernel (reference.hpp, or the fused kernels).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "qkv/attention_params.hpp"
#include "qkv/tensor.hpp"

namespace qkv {

enum class sdpa_impl { reference, fused, auto_select };

// "reference" | "fused" | "auto"; throws qkv::error naming `argument` otherwise.
sdpa_impl parse_sdpa_impl(const std::string& text, const std::string& argument = "--impl");
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
  sdpa_impl impl = sdpa_impl::auto_select;
  int threads = 0;  // 0: QKV_NUM_THREADS, else every core
  // Dropout on the attention weights, O = (P ⊙ M/(1-p))·V; lse stays that of the un-dropped
  // scores. 0 <= dropout_p < 1 (0 = off); the mask is a pure function of (dropout_seed, b, h, i,
  // j).
  float dropout_p = 0.0f;
  uint64_t dropout_seed = 0;
  // Score modifiers (docs/attention.md). Sliding window: key j visible only if
  // i + o - left <= j <= i + o + right, o = Nk - Nq; -1 = unbounded side.
  struct attention_window {
    int64_t left = -1, right = -1;
  };
  std::optional<attention_window> window;
  std::optional<float> softcap;        // S = c·tanh(S/c); finite and > 0
  std::optional<tensor> alibi_slopes;  // [Hq]: S -= slope_h·|i + o - j|; finite
  std::optional<tensor> sinks;         // [Hq]: one extra logit per head in the softmax; finite
};

struct sdpa_result {
  tensor out;  // [B,Hq,Nq,dv]
  tensor lse;  // [B,Hq,Nq]
  // What the backward recomputes P from (attention_params::row_max, row_log_sum), [B,Hq,Nq]
  // each. A result built from out and lse alone (empty tensors here) still works: the backward
  // then takes m = lse, log l = 0, exact except where |lse| is so large that fp32 rounds log l.
  tensor row_max, row_log_sum;
};

struct sdpa_gradients {
  tensor dq;      // [B,Hq,Nq,d]
  tensor dk;      // [B,Hkv,Nk,d]
  tensor dv;      // [B,Hkv,Nk,dv]
  tensor dsinks;  // [Hq] with sinks, else empty
};

// Q [B,Hq,Nq,d], K [B,Hkv,Nk,d], V [B,Hkv,Nk,dv].
sdpa_result sdpa_forward(const tensor& q, const tensor& k, const tensor& v,
                         const sdpa_options& options = {});

// Gradients of L = sum(O * grad_out), grad_out [B,Hq,Nq,dv]. `forward` is the result of
// sdpa_forward on the same inputs (its O and lse are reused by kernels that need them).
sdpa_gradients sdpa_backward(const tensor& q, const tensor& k, const tensor& v,
                             const sdpa_result& forward, const tensor& grad_out,
                             const sdpa_options& options = {});

// Checks every shape and option and fills the kernel's parameter struct (pointers into the
// given tensors; outputs left null). Throws qkv::error. Exposed for tools and tests.
attention_params make_attention_params(const tensor& q, const tensor& k, const tensor& v,
                                       const sdpa_options& options);

// Whether the fused kernel is compiled in; "auto" picks it when it is.
bool fused_kernel_available();

}  // namespace qkv
