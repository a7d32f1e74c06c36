// The fused attention backward (FlashAttention-2, Dao 2023, algorithm 2) on the CPU: the driver.
// Threads split the key blocks of every (b, kv head); each task recomputes its tiles of P from
// the saved lse (fused_backward_tile.hpp), so no N x N matrix is ever held.
// Legend: B batch, Hq/Hkv query/kv heads, Nq queries, Nk keys, d head dim, dv value dim.
//
// Forward (DESIGN section 2): S = scale·Q·K^T + bias, P = softmax_rows(S), O = P·V.
// Backward:  P = exp(S - lse)            (the saved lse; no renormalisation)
//            dV = P^T·dO                 (from O = P·V)
//            dP = dO·V^T
//            dS = P ∘ (dP - D),  D_i = rowsum(dO_i ∘ O_i) = sum_j P_ij·dP_ij
//            dQ = scale·dS·K,  dK = scale·dS^T·Q   (from S = scale·Q·K^T)
// dK and dV of a key block are complete within its task; dQ sums over key blocks that different
// threads own, so each thread adds into its own copy and the copies are summed at the end.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "fused_backward_task.hpp"
#include "qkv/error.hpp"
#include "qkv/fused.hpp"
#include "qkv/threads.hpp"

namespace qkv {
namespace {

using detail::backward_Bc;
using detail::backward_Br;

detail::backward_task_fn task_function(simd_target target) {
  if (target == simd_target::automatic)
    target = simd_target_available(simd_target::avx2) ? simd_target::avx2 : simd_target::portable;
  if (!simd_target_available(target))
    throw error(std::string("simd target: this CPU cannot run ") + to_string(target));
  return target == simd_target::avx2 ? detail::backward_task_avx2 : detail::backward_task_portable;
}

// D_i = rowsum(dO_i ∘ O_i) for every (b, h, i), from the saved O: it holds for the whole key row
// even when K/V are only a part of it. [B,Hq,Nq]
std::vector<float> row_terms(const attention_grad_params& g, int threads) {
  const attention_params& p = g.forward;
  std::vector<float> D(static_cast<size_t>(p.B * p.Hq * p.Nq));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < p.B * p.Hq * p.Nq; ++r) {
    const int64_t b = r / (p.Hq * p.Nq), h = r / p.Nq % p.Hq, i = r % p.Nq;
    const float* o = g.out + b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
    const float* dout = g.dout + b * g.dout_stride[0] + h * g.dout_stride[1] + i * g.dout_stride[2];
    double sum = 0.0;
    for (int64_t c = 0; c < p.dv; ++c)
      sum += static_cast<double>(o[c * p.o_stride[3]]) * dout[c * g.dout_stride[3]];
    D[static_cast<size_t>(r)] = static_cast<float>(sum);
  }
  return D;
}

}  // namespace

void sdpa_backward_fused(const attention_grad_params& g, simd_target target) {
  const attention_params& p = g.forward;
  QKV_ASSERT(p.q_stride[3] == 1 && p.k_stride[3] == 1 && p.v_stride[3] == 1 &&
             g.dout_stride[3] == 1);
  const detail::backward_task_fn task_fn = task_function(target);
  const int threads = resolve_thread_count(p.threads);
  const std::vector<float> D = row_terms(g, threads);
  const int64_t blocks = (p.Nk + backward_Bc - 1) / backward_Bc, tasks = p.B * p.Hkv * blocks;
  const size_t dq_size = static_cast<size_t>(p.B * p.Hq * p.Nq * p.d);
  std::vector<std::vector<float>> dq_parts(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    detail::backward_scratch t;
    t.P.resize(backward_Br * backward_Bc);
    t.dS.resize(backward_Br * backward_Bc);
    t.dK.resize(static_cast<size_t>(backward_Bc * p.d));
    t.dV.resize(static_cast<size_t>(backward_Bc * p.dv));
    t.dQ.assign(dq_size, 0.0f);  // zeroed by its own thread, so that its pages land near it
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / (p.Hkv * blocks), hk = task / blocks % p.Hkv;
      const int64_t j0 = task % blocks * backward_Bc;
      task_fn(g, D.data(), b, hk, j0, std::min(backward_Bc, p.Nk - j0), t);
    }
    dq_parts[static_cast<size_t>(omp_get_thread_num())] = std::move(t.dQ);
  }
  // dQ = the sum of the threads' copies (the runtime may have run fewer threads than asked),
  // written with the output's strides.
  std::vector<const float*> parts;
  for (const auto& part : dq_parts)
    if (!part.empty()) parts.push_back(part.data());
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < p.B * p.Hq * p.Nq; ++r) {
    const int64_t b = r / (p.Hq * p.Nq), h = r / p.Nq % p.Hq, i = r % p.Nq;
    float* dq = g.dq + b * g.dq_stride[0] + h * g.dq_stride[1] + i * g.dq_stride[2];
    for (int64_t c = 0; c < p.d; ++c) {
      float sum = 0.0f;
      for (const float* part : parts) sum += part[r * p.d + c];
      dq[c * g.dq_stride[3]] = sum;
    }
  }
}

}  // namespace qkv
