// The fused attention backward (FlashAttention-2, Dao 2023, algorithm 2) on the CPU: the driver.
// Threads split the key blocks of every (b, kv head); each task recomputes its tiles of P from
// the saved row statistics (fused_backward_tile.hpp), so no N x N matrix is ever held.
// Legend: B batch, Hq/Hkv query/kv heads, Nq queries, Nk keys, d head dim, dv value dim.
//
// Forward (docs/contracts.md section 1): S = scale·Q·K^T + bias, P = softmax_rows(S), O = P·V.
// Backward:  P = exp((S - m) - log l)    (the saved row statistics; no renormalisation)
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

const detail::fused_backward_target& target_kernels(simd_target target) {
  return *detail::for_simd_target(target, &detail::fused_backward_avx512,
                                  &detail::fused_backward_avx2, &detail::fused_backward_portable);
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

// The statistics each row's P is recomputed with, contiguous [B,Hq,Nq]: the saved m and log l,
// except where the recomputed fp32 scores cannot match them closely enough. P_ij =
// exp((S_ij - m_i) - log l_i) amplifies any difference between the forward's scores and the
// backward's own (other products, other rounding): at |S| ~ 1e4 an ulp is 1e-3, hence a 1e-3
// relative error in P. So for a row with |m| >= 128 (where an ulp passes 7.6e-6) the statistics
// of the given keys' own scores are taken instead when their lse agrees with the saved one to
// within the precision of scores that large (2^-18·|lse|): then the given keys hold the row's
// whole softmax mass. When they are only a part of the row (ring attention), the local value
// falls short and the saved statistics stay.
struct statistics {
  std::vector<float> max, log_sum;
};
statistics recompute_stats(const attention_grad_params& g, simd_target target, int threads) {
  constexpr float large = 128.0f;
  constexpr double agreement = 0x1p-18;
  const attention_params& p = g.forward;
  const size_t n = static_cast<size_t>(p.B * p.Hq * p.Nq);
  statistics st{std::vector<float>(n), std::vector<float>(n)};
  const int64_t blocks = (p.Nq + backward_Br - 1) / backward_Br;
  const detail::backward_stats_fn local_stats =
      target_kernels(target).local_stats[static_cast<int>(p.k_type)];
#pragma omp parallel num_threads(threads)
  {
    detail::backward_scratch t;
    std::vector<double> m(backward_Br), log_sum(backward_Br);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < p.B * p.Hq * blocks; ++task) {
      const int64_t b = task / (p.Hq * blocks), h = task / blocks % p.Hq;
      const int64_t i0 = task % blocks * backward_Br, ni = std::min(backward_Br, p.Nq - i0);
      const int64_t first = (b * p.Hq + h) * p.Nq + i0;
      float* max = st.max.data() + first;
      float* ls = st.log_sum.data() + first;
      bool refine = false;
      for (int64_t r = 0; r < ni; ++r) {
        const int64_t at = b * p.lse_stride[0] + h * p.lse_stride[1] + (i0 + r) * p.lse_stride[2];
        max[r] = g.row_max[at];
        ls[r] = g.row_log_sum[at];
        refine |= std::isfinite(max[r]) && std::fabs(max[r]) >= large;
      }
      if (!refine) continue;
      t.resize(p);
      local_stats(p, b, h, i0, ni, t, m.data(), log_sum.data());
      for (int64_t r = 0; r < ni; ++r) {
        const double saved = static_cast<double>(max[r]) + ls[r];
        if (std::isfinite(max[r]) && m[r] + log_sum[r] >= saved - agreement * std::fabs(saved)) {
          max[r] = static_cast<float>(m[r]);
          ls[r] = static_cast<float>(log_sum[r]);
        }
      }
    }
  }
  return st;
}

}  // namespace

void sdpa_sinks_backward(const attention_grad_params& g) {
  const attention_params& p = g.forward;
  for (int64_t h = 0; h < p.Hq; ++h) {
    double sum = 0.0;
    for (int64_t b = 0; b < p.B && p.sinks; ++b)
      for (int64_t i = 0; i < p.Nq; ++i) {
        const int64_t at = b * p.lse_stride[0] + h * p.lse_stride[1] + i * p.lse_stride[2];
        const float* o = g.out + b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
        const float* dout =
            g.dout + b * g.dout_stride[0] + h * g.dout_stride[1] + i * g.dout_stride[2];
        double D = 0.0;
        for (int64_t c = 0; c < p.dv; ++c)
          D += static_cast<double>(o[c * p.o_stride[3]]) * dout[c * g.dout_stride[3]];
        // exp(sink - lse) with lse = m + log l, the sink's probability in row i.
        sum += std::exp((p.sinks[h] - static_cast<double>(g.row_max[at])) - g.row_log_sum[at]) * D;
      }
    g.dsinks[h] = static_cast<float>(-sum);
  }
}

void sdpa_backward_fused(const attention_grad_params& g, simd_target target) {
  const attention_params& p = g.forward;
  QKV_ASSERT(p.q_stride[3] == 1 && p.k_stride[3] == 1 && p.v_stride[3] == 1 &&
             g.dout_stride[3] == 1);
  const detail::backward_task_fn task_fn =
      target_kernels(target).task[static_cast<int>(g.forward.k_type)];
  const int threads = resolve_thread_count(p.threads);
  const std::vector<float> D = row_terms(g, threads);
  const statistics st = recompute_stats(g, target, threads);
  const detail::row_statistics stats{st.max.data(), st.log_sum.data()};
  if (g.dsinks) sdpa_sinks_backward(g);
  const int64_t pairs = p.B * p.Hkv, blocks = (p.Nk + backward_Bc - 1) / backward_Bc;
  // dQ accumulates in rows of whole panels (d_pad floats), which the products write whole.
  const int64_t d_pad = detail::backward_padded(p.d);
  const size_t dq_size = static_cast<size_t>(p.B * p.Hq * p.Nq * d_pad);
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
    t.resize(p);
    const auto run = [&](int64_t pair, int64_t j0) {
      task_fn(g, stats, D.data(), pair / p.Hkv, pair % p.Hkv, j0, std::min(backward_Bc, p.Nk - j0),
              t);
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
      for (const float* part : parts) sum += part[r * d_pad + c];
      dq[c * g.dq_stride[3]] = sum;
    }
  }
}

}  // namespace qkv
