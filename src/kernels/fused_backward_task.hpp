// One task of the fused backward (the gradients of one key block) and its per-thread scratch,
// compiled once per SIMD target (fused_backward_avx2.cpp, fused_backward_portable.cpp), of which
// fused_backward.cpp picks one at run time.
#pragma once

#include <cstdint>
#include <vector>

#include "qkv/attention_params.hpp"

namespace qkv::detail {

inline constexpr int64_t backward_Br = 128;  // queries per tile
inline constexpr int64_t backward_Bc = 128;  // keys per tile: one key block is one task

// The tiles and accumulators of one thread.
struct backward_scratch {
  std::vector<float> P, dS;   // [Br,Bc]: P; dP, turned into dS in place
  std::vector<float> cap;     // [Br,Bc]: with a softcap, d softcapped / d raw score
  std::vector<float> dK, dV;  // [Bc,d], [Bc,dv]: the current key block's gradients
  float* dQ = nullptr;        // [B,Hq,Nq,d]: the dQ sums this thread adds its terms to
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

void backward_task_portable(const attention_grad_params& g, const row_statistics& stats,
                            const float* D, int64_t b, int64_t hk, int64_t j0, int64_t nj,
                            backward_scratch& t);
void backward_task_avx2(const attention_grad_params& g, const row_statistics& stats, const float* D,
                        int64_t b, int64_t hk, int64_t j0, int64_t nj, backward_scratch& t);
void backward_task_avx512(const attention_grad_params& g, const row_statistics& stats,
                          const float* D, int64_t b, int64_t hk, int64_t j0, int64_t nj,
                          backward_scratch& t);

// The softmax statistics (m, log l) of rows [i0, i0 + ni) of query head h over the given keys
// and the sink, in float64, from the same score tiles the tasks compute. P, cap: scratch
// [Br,Bc]; m, log_sum: [ni].
void backward_local_stats(const attention_params& p, int64_t b, int64_t h, int64_t i0, int64_t ni,
                          float* P, float* cap, double* m, double* log_sum);

}  // namespace qkv::detail
