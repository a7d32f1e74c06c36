// One task of the fused backward (the gradients of one key block) and its per-thread scratch,
// compiled once per SIMD target (fused_backward_avx512.cpp, fused_backward_avx2.cpp,
// fused_backward_portable.cpp) and storage type, of which fused_backward.cpp picks one at run
// time.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "qkv/attention_params.hpp"
#include "simd/elements.hpp"

namespace qkv::detail {

inline constexpr int64_t backward_Br = 128;  // queries per tile
inline constexpr int64_t backward_Bc = 128;  // keys per tile: one key block is one task
// Row stride of the P and dS tiles: Bc plus one 64-byte line, so that a column of the tile (read
// down its rows by the products with P^T and dS^T) spreads over the L1 sets instead of falling
// into the few that a stride of 512 bytes maps to.
inline constexpr int64_t backward_ldp = backward_Bc + 16;
// Head dimensions rounded up to whole panels of the widest target (64 floats, AVX-512): the row
// width of the dQ, dK and dV accumulators, which the products write in whole panels.
inline constexpr int64_t backward_padded(int64_t n) {
  return (n + 63) / 64 * 64;
}

// The tiles, packed operands and accumulators of one thread (tile_gemm.hpp's panel layouts).
struct backward_scratch {
  std::vector<float> P, dS;   // [Br,ldp]: P; dP, turned into dS in place
  std::vector<float> cap;     // [Br,ldp]: with a softcap, d softcapped / d raw score
  std::vector<float> kt, vt;  // the key block's K^T [d x Bc] and V^T [dv x Bc], packed
  std::vector<float> k;       // the key block's K [Bc x d_pad], packed
  std::vector<float> q, dO;   // the query block's Q [Br x d_pad] and dO [Br x dv_pad], packed
  std::vector<float> dK, dV;  // [Bc,d_pad], [Bc,dv_pad]: the current key block's gradients
  std::vector<float> qw;      // [Br,d]: a query block stored in f16 or bf16, widened
  float* dQ = nullptr;        // [B,Hq,Nq,d_pad]: the dQ sums this thread adds its terms to

  void resize(const attention_params& p) {
    const auto n = [](int64_t x) { return static_cast<size_t>(x); };
    const int64_t d_pad = backward_padded(p.d), dv_pad = backward_padded(p.dv);
    P.resize(n(backward_Br * backward_ldp));
    dS.resize(n(backward_Br * backward_ldp));
    if (p.softcap != 0.0f) cap.resize(n(backward_Br * backward_ldp));
    kt.resize(n(backward_Bc * p.d));
    vt.resize(n(backward_Bc * p.dv));
    k.resize(n(backward_Bc * d_pad));
    q.resize(n(backward_Br * d_pad));
    dO.resize(n(backward_Br * dv_pad));
    dK.resize(n(backward_Bc * d_pad));
    dV.resize(n(backward_Bc * dv_pad));
    if (p.q_type != dtype::f32) qw.resize(n(backward_Br * p.d));
  }
};

// The row statistics P is recomputed with, contiguous [B,Hq,Nq] each: m and log l.
struct row_statistics {
  const float* max = nullptr;
  const float* log_sum = nullptr;
};

// Key block [j0, j0 + nj) of kv head hk in batch b against every query of the group's query
// heads: writes its rows of g.dk and g.dv, and adds its terms of dQ to t.dQ. D: contiguous
// [B,Hq,Nq].
using backward_task_fn = void (*)(const attention_grad_params& g, const row_statistics& stats,
                                  const float* D, int64_t b, int64_t hk, int64_t j0, int64_t nj,
                                  backward_scratch& t);

// The softmax statistics (m, log l) of rows [i0, i0 + ni) of query head h over the given keys
// and the sink, in float64, from the same score tiles the same target's tasks compute (hence the
// same bits). t: the thread's scratch; m, log_sum: [ni].
using backward_stats_fn = void (*)(const attention_params& p, int64_t b, int64_t h, int64_t i0,
                                   int64_t ni, backward_scratch& t, double* m, double* log_sum);

// The two entry points of one SIMD target, each compiled once per storage type of K and V
// (indexed by dtype: f32, f16, bf16).
struct fused_backward_target {
  std::array<backward_task_fn, 3> task;
  std::array<backward_stats_fn, 3> local_stats;
};

extern const fused_backward_target fused_backward_portable;
extern const fused_backward_target fused_backward_avx2;
extern const fused_backward_target fused_backward_avx512;

}  // namespace qkv::detail
