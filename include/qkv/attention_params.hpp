// The plain parameter structs every attention kernel takes: pointers, int64_t sizes, strides
// (in elements). Filled and validated by the C++ API in attention.hpp; kernels trust them.
//
// Legend: B batch, Hq query heads, Hkv key/value heads (Hq % Hkv == 0), Nq queries, Nk keys,
// d query/key head dim, dv value head dim.
#pragma once

#include <cstdint>

#include "qkv/dtype.hpp"

namespace qkv {

enum class causal_mode { none, top_left, bottom_right };
enum class mask_kind { none, boolean, additive };

// An explicit mask broadcast to [B,Hq,Nq,Nk] by strides (0 along broadcast dimensions).
// boolean: uint8_t, nonzero = this query may attend this key. additive: float added to S.
struct mask_ref {
  mask_kind kind = mask_kind::none;
  const void* data = nullptr;
  int64_t stride[4] = {0, 0, 0, 0};  // b, h, i, j
};

struct attention_params {
  // The inputs, each of its own storage type (q_type, k_type, v_type); strides count elements.
  const void* q = nullptr;  // [B,Hq,Nq,d]
  const void* k = nullptr;  // [B,Hkv,Nk,d]
  const void* v = nullptr;  // [B,Hkv,Nk,dv]
  dtype q_type = dtype::f32, k_type = dtype::f32, v_type = dtype::f32;
  float* o = nullptr;    // [B,Hq,Nq,dv]
  float* lse = nullptr;  // [B,Hq,Nq], natural-log logsumexp of each score row; may be null
  // What the backward recomputes P from, [B,Hq,Nq] each (strides lse_stride), may be null: the
  // row maximum m_i of the scores (sink included) and log l_i = log sum_j exp(S_ij - m_i), so
  // that P_ij = exp((S_ij - m_i) - log l_i) stays exact where lse = m + log l would round log l
  // away in fp32 (|m| ~ 1e9: a -1e9 mask). m = -inf for a row with no visible key and no sink;
  // NaN for a row the NaN rule poisons.
  float* row_max = nullptr;
  float* row_log_sum = nullptr;
  int64_t B = 0, Hq = 0, Hkv = 0, Nq = 0, Nk = 0, d = 0, dv = 0;
  int64_t q_stride[4] = {}, k_stride[4] = {}, v_stride[4] = {}, o_stride[4] = {};
  int64_t lse_stride[3] = {};
  float scale = 1.0f;
  causal_mode causal = causal_mode::none;
  mask_ref mask;
  // Score modifiers (docs/attention.md), applied in this order after S = scale·Q·K^T:
  // softcap c > 0: S = c·tanh(S/c) (0 = off); ALiBi: S -= slope_h·|i + o - j|; the sliding
  // window hides key j unless i + o - left <= j <= i + o + right (-1 = unbounded side), with
  // o = Nk - Nq; sinks: one extra logit per query head in every softmax denominator, carrying no
  // value.
  int64_t window_left = -1, window_right = -1;
  float softcap = 0.0f;                 // 0 = off
  const float* alibi_slopes = nullptr;  // [Hq]
  const float* sinks = nullptr;         // [Hq]
  // A block of a longer sequence (ring attention): query i and key j stand at positions
  // q_offset + i and k_offset + j of a problem of seq_q queries and seq_k keys, whose positions
  // the causal and window rules and ALiBi use. seq_q = seq_k = 0: this call's Nq and Nk.
  int64_t q_offset = 0, k_offset = 0, seq_q = 0, seq_k = 0;
  // Dropout on the attention weights: O = (P ⊙ M/(1-p))·V with M_ij a pure function of
  // (dropout_seed, b, h, i, j) (src/kernels/dropout_lookup.hpp). 0 <= dropout_p < 1; 0 = off.
  float dropout_p = 0.0f;
  uint64_t dropout_seed = 0;
  int threads = 0;  // 0: the library default (QKV_NUM_THREADS, else all cores)
};

// Gradients of L = sum(O * dO) with respect to Q, K and V.
struct attention_grad_params {
  attention_params forward;    // q, k, v, sizes, mask, modifiers (its outputs unused)
  const float* out = nullptr;  // [B,Hq,Nq,dv], O saved by the forward (strides forward.o_stride)
  // [B,Hq,Nq] each, saved by the forward (attention_params::row_max, row_log_sum; strides
  // forward.lse_stride): P_ij = exp((S_ij - m_i) - log l_i).
  const float* row_max = nullptr;
  const float* row_log_sum = nullptr;
  const float* dout = nullptr;  // [B,Hq,Nq,dv]
  float* dq = nullptr;          // [B,Hq,Nq,d]
  float* dk = nullptr;          // [B,Hkv,Nk,d], summed over the Hq/Hkv query heads of a group
  float* dv = nullptr;          // [B,Hkv,Nk,dv], likewise
  int64_t dout_stride[4] = {}, dq_stride[4] = {}, dk_stride[4] = {}, dv_stride[4] = {};
  // [Hq], with forward.sinks: d sink_h = -sum_{b,i} exp(sink_h - lse_i)·sum_c dO_ic·O_ic.
  float* dsinks = nullptr;
};

}  // namespace qkv
