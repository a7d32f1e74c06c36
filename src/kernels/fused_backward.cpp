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
// dK and dV of a key block are complete within its task; dQ sums over key blocks, in a fixed
// order at a given thread count (the schedules: sdpa_backward_fused).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fused_backward_task.hpp"
#include "qkv/error.hpp"
#include "qkv/fused.hpp"
#include "qkv/threads.hpp"
#include "simd_dispatch.hpp"

namespace qkv {
namespace {

using detail::backward_Bc;
using detail::backward_Br;

detail::backward_task_fn task_function(simd_target target) {
  return detail::for_simd_target<detail::backward_task_fn>(target, detail::backward_task_avx512,
                                                           detail::backward_task_avx2,
                                                           detail::backward_task_portable);
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

// The lse each row's P is recomputed with, contiguous [B,Hq,Nq]: the saved one, except where
// fp32 cannot carry it precisely enough. P_ij = exp(S_ij - lse_i) amplifies any mismatch between
// the saved lse and the recomputed fp32 scores: at |lse| ~ 1e4 the fp32 rounding of lse alone is
// 5e-4, hence a 5e-4 relative error in P and in the gradients. So for a row with |lse| >= 128
// (where that rounding passes 7.6e-6) the logsumexp of the given keys' own scores is taken
// instead when it agrees with the saved lse to within the precision of scores that large
// (2^-18·|lse|): then the given keys hold the row's whole softmax mass. When they are only a part
// of the row (ring attention), the local value falls short and the saved lse stays.
std::vector<float> recompute_lse(const attention_grad_params& g, int threads) {
  constexpr float large = 128.0f, agreement = 0x1p-18f;
  const attention_params& p = g.forward;
  std::vector<float> lse(static_cast<size_t>(p.B * p.Hq * p.Nq));
  const int64_t blocks = (p.Nq + backward_Br - 1) / backward_Br;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> P;
    std::vector<double> local(backward_Br);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < p.B * p.Hq * blocks; ++task) {
      const int64_t b = task / (p.Hq * blocks), h = task / blocks % p.Hq;
      const int64_t i0 = task % blocks * backward_Br, ni = std::min(backward_Br, p.Nq - i0);
      float* out = lse.data() + (b * p.Hq + h) * p.Nq + i0;
      bool refine = false;
      for (int64_t r = 0; r < ni; ++r) {
        out[r] = g.lse[b * p.lse_stride[0] + h * p.lse_stride[1] + (i0 + r) * p.lse_stride[2]];
        refine |= std::isfinite(out[r]) && std::fabs(out[r]) >= large;
      }
      if (!refine) continue;
      P.resize(backward_Br * backward_Bc);
      detail::backward_local_lse(p, b, h, i0, ni, P.data(), local.data());
      for (int64_t r = 0; r < ni; ++r)
        if (std::isfinite(out[r]) && local[r] >= out[r] - agreement * std::fabs(out[r]))
          out[r] = static_cast<float>(local[r]);
    }
  }
  return lse;
}

}  // namespace

void sdpa_backward_fused(const attention_grad_params& g, simd_target target) {
  const attention_params& p = g.forward;
  QKV_ASSERT(p.q_stride[3] == 1 && p.k_stride[3] == 1 && p.v_stride[3] == 1 &&
             g.dout_stride[3] == 1);
  const detail::backward_task_fn task_fn = task_function(target);
  const int threads = resolve_thread_count(p.threads);
  const std::vector<float> D = row_terms(g, threads), lse = recompute_lse(g, threads);
  const int64_t pairs = p.B * p.Hkv, blocks = (p.Nk + backward_Bc - 1) / backward_Bc;
  const size_t dq_size = static_cast<size_t>(p.B * p.Hq * p.Nq * p.d);
  // Two schedules, each giving the same bits on every run at a given thread count (dQ sums the
  // same terms in the same order):
  // - enough (b, kv head) pairs to keep every thread busy: one task per pair walks its key
  //   blocks in order and adds into the one shared dQ, whose rows of that pair no other task
  //   touches; tasks are handed out dynamically, which adapts to a loaded machine;
  // - otherwise one task per key block, each thread adding into its own zeroed dQ copy and the
  //   copies summed in thread order. The blocks go to threads by a fixed rule: round r hands
  //   tasks [r·n, (r+1)·n) to the n threads, in reverse order on odd rounds, since causal key
  //   blocks' work falls with j and the snake evens out the threads' totals.
  const bool by_pair = pairs >= 4 * threads;
  std::vector<std::vector<float>> dq_parts(by_pair ? 1 : static_cast<size_t>(threads));
  if (by_pair) dq_parts[0].assign(dq_size, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    detail::backward_scratch t;
    t.P.resize(backward_Br * backward_Bc);
    t.dS.resize(backward_Br * backward_Bc);
    t.dK.resize(static_cast<size_t>(backward_Bc * p.d));
    t.dV.resize(static_cast<size_t>(backward_Bc * p.dv));
    const auto run = [&](int64_t pair, int64_t j0) {
      task_fn(g, lse.data(), D.data(), pair / p.Hkv, pair % p.Hkv, j0,
              std::min(backward_Bc, p.Nk - j0), t);
    };
    if (by_pair) {
      t.dQ = dq_parts[0].data();
#pragma omp for schedule(dynamic, 1)
      for (int64_t pair = 0; pair < pairs; ++pair)
        for (int64_t j0 = 0; j0 < p.Nk; j0 += backward_Bc) run(pair, j0);
    } else {
      const int64_t n = omp_get_num_threads(), me = omp_get_thread_num();
      std::vector<float>& mine = dq_parts[static_cast<size_t>(me)];
      mine.assign(dq_size, 0.0f);  // zeroed by its own thread, so that its pages land near it
      t.dQ = mine.data();
      for (int64_t round = 0; round * n < pairs * blocks; ++round) {
        const int64_t task = round * n + (round % 2 == 0 ? me : n - 1 - me);
        if (task < pairs * blocks) run(task / blocks, task % blocks * backward_Bc);
      }
    }
  }
  // dQ = the shared sums, or the sum of the threads' copies in thread order (the runtime may
  // have run fewer threads than asked), written with the output's strides.
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
