// The plain parameter structs every attention kernel takes: pointers, int64_t sizes, strides
// (in elements). Filled and validated by the C++ API in attention.hpp; kernels trust them.
//
// Legend: B batch, Hq query heads, Hkv key/value heads (Hq % Hkv == 0), Nq queries, Nk keys,
// d query/key head dim, dv value head dim.
#pragma once

#include <cstdint>

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
  const float* q = nullptr;  // [B,Hq,Nq,d]
  const float* k = nullptr;  // [B,Hkv,Nk,d]
  const float* v = nullptr;  // [B,Hkv,Nk,dv]
  float* o = nullptr;        // [B,Hq,Nq,dv]
  float* lse = nullptr;      // [B,Hq,Nq], natural-log logsumexp of each score row; may be null
  int64_t B = 0, Hq = 0, Hkv = 0, Nq = 0, Nk = 0, d = 0, dv = 0;
  int64_t q_stride[4] = {}, k_stride[4] = {}, v_stride[4] = {}, o_stride[4] = {};
  int64_t lse_stride[3] = {};
  float scale = 1.0f;
  causal_mode causal = causal_mode::none;
  mask_ref mask;
  // Dropout on the attention weights: O = (P ⊙ M/(1-p))·V with M_ij a pure function of
  // (dropout_seed, b, h, i, j) (src/kernels/dropout_lookup.hpp). 0 <= dropout_p < 1; 0 = off.
  float dropout_p = 0.0f;
  uint64_t dropout_seed = 0;
  int threads = 0;  // 0: the library default (QKV_NUM_THREADS, else all cores)
};

// Gradients of L = sum(O * dO) with respect to Q, K and V.
struct attention_grad_params {
  attention_params forward;     // q, k, v, sizes, mask (forward.o and forward.lse unused)
  const float* out = nullptr;   // [B,Hq,Nq,dv], O saved by the forward (strides forward.o_stride)
  const float* lse = nullptr;   // [B,Hq,Nq], lse saved by the forward (strides forward.lse_stride)
  const float* dout = nullptr;  // [B,Hq,Nq,dv]
  float* dq = nullptr;          // [B,Hq,Nq,d]
  float* dk = nullptr;          // [B,Hkv,Nk,d], summed over the Hq/Hkv query heads of a group
  float* dv = nullptr;          // [B,Hkv,Nk,dv], likewise
  int64_t dout_stride[4] = {}, dq_stride[4] = {}, dk_stride[4] = {}, dv_stride[4] = {};
};

// Is key j visible to query i under the causal alignment alone? (DESIGN section 2)
inline bool causal_allows(causal_mode mode, int64_t i, int64_t j, int64_t Nq, int64_t Nk) {
  switch (mode) {
    case causal_mode::top_left:
      return j <= i;
    case causal_mode::bottom_right:
      return j <= i + Nk - Nq;
    default:
      return true;
  }
}

}  // namespace qkv
