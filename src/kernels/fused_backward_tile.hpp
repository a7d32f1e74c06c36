// The fused backward's task, written once over the vector operations V of simd/avx2.hpp or
// simd/portable.hpp: for one key block, every Br x Bc tile of P recomputed from the saved lse,
// its five products (OpenBLAS sgemm, one thread) and its element-wise steps (V).
// Legend: B batch, Hq/Hkv query/kv heads, Nq queries, Nk keys, d head dim, dv value dim;
// Br x Bc a tile of queries x keys; i indexes queries, j keys, c tile columns.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "dropout_lookup.hpp"
#include "fused_backward_task.hpp"
#include "simd/exp.hpp"

namespace qkv::detail {

template <typename V>
struct fused_backward_kernel {
  static constexpr int64_t Br = backward_Br, Bc = backward_Bc;
  static constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

  // The causal limit of one row of a tile: its keys at columns >= the result are hidden
  // (DESIGN section 2: key j is visible to query i when j <= i + offset).
  static int64_t visible_columns(const attention_params& p, int64_t i, int64_t j0, int64_t nj) {
    if (p.causal == causal_mode::none) return nj;
    const int64_t offset = p.causal == causal_mode::bottom_right ? p.Nk - p.Nq : 0;
    return std::clamp<int64_t>(i + offset - j0 + 1, 0, nj);
  }

  // Is every key of the tile hidden from every query of it by the causal mask?
  static bool tile_hidden(const attention_params& p, int64_t i0, int64_t ni, int64_t j0) {
    return visible_columns(p, i0 + ni - 1, j0, 1) == 0;
  }

  // S + bias over one row of the tile (s: the scaled scores, in place), -inf for keys hidden by
  // a boolean mask. Returns the causal limit: the columns from there on are not written.
  static int64_t biased_scores_row(const attention_params& p, int64_t b, int64_t h, int64_t i,
                                   int64_t j0, int64_t nj, float* s) {
    const int64_t visible = visible_columns(p, i, j0, nj);
    const mask_ref& m = p.mask;
    const int64_t at = b * m.stride[0] + h * m.stride[1] + i * m.stride[2] + j0 * m.stride[3];
    const int64_t step = m.stride[3];
    if (m.kind == mask_kind::boolean) {
      const uint8_t* row = static_cast<const uint8_t*>(m.data) + at;
      for (int64_t c = 0; c < visible; ++c) s[c] = row[c * step] ? s[c] : minus_infinity;
    } else if (m.kind == mask_kind::additive) {
      const float* row = static_cast<const float*>(m.data) + at;
      for (int64_t c = 0; c < visible; ++c) s[c] += row[c * step];
    }
    return visible;
  }

  // P_ij = exp(S_ij + bias_ij - lse_i) over one row of the tile (s: the scaled scores, in
  // place). Hidden keys and a row with lse = -inf (no visible key at all) give exactly 0.
  // Returns whether the row has a visible key here.
  static bool probabilities_row(const attention_params& p, int64_t b, int64_t h, int64_t i,
                                int64_t j0, int64_t nj, float lse, float* s) {
    const int64_t visible = lse == minus_infinity ? 0 : biased_scores_row(p, b, h, i, j0, nj, s);
    // Whole vectors up to the row's padded length (Bc is a multiple of the width); the columns
    // past `visible` are then set to 0.
    const typename V::reg l = V::set1(lse);
    for (int64_t c = 0; c < visible; c += V::width)
      V::store(s + c, simd::exp<V>(V::sub(V::load(s + c), l)));
    std::fill(s + visible, s + nj, 0.0f);
    return visible > 0;
  }

  // The logsumexp of rows [i0, i0 + ni) of query head h over the given keys, from the very
  // scores key_block computes (the same tiles and products, hence the same bits), in float64:
  // lse_i = m_i + log sum_j exp(S_ij - m_i), m_i the running maximum. -inf for a row without a
  // visible key. P is scratch [Br,Bc].
  static void local_lse(const attention_params& p, int64_t b, int64_t h, int64_t i0, int64_t ni,
                        float* P, double* lse) {
    const int64_t hk = h / (p.Hq / p.Hkv);
    const float* q = p.q + b * p.q_stride[0] + h * p.q_stride[1] + i0 * p.q_stride[2];
    std::vector<double> row_max(static_cast<size_t>(ni), minus_infinity);
    std::vector<double> sum(static_cast<size_t>(ni), 0.0);
    for (int64_t j0 = 0; j0 < p.Nk; j0 += Bc) {
      const int64_t nj = std::min(Bc, p.Nk - j0);
      if (tile_hidden(p, i0, ni, j0)) break;
      const float* k = p.k + b * p.k_stride[0] + hk * p.k_stride[1] + j0 * p.k_stride[2];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, p.d, p.scale, q, p.q_stride[2],
                  k, p.k_stride[2], 0.0f, P, Bc);
      for (int64_t r = 0; r < ni; ++r) {
        float* s = P + r * Bc;
        const int64_t visible = biased_scores_row(p, b, h, i0 + r, j0, nj, s);
        float m = minus_infinity;
        for (int64_t c = 0; c < visible; ++c) m = std::max(m, s[c]);
        if (m == minus_infinity) continue;
        const double m_new = std::max<double>(row_max[r], m);
        double tile_sum = 0.0;
        for (int64_t c = 0; c < visible; ++c) tile_sum += std::exp(s[c] - m_new);
        sum[r] = sum[r] * std::exp(row_max[r] - m_new) + tile_sum;
        row_max[r] = m_new;
      }
    }
    for (int64_t r = 0; r < ni; ++r)
      lse[r] = sum[r] > 0.0 ? row_max[r] + std::log(sum[r]) : minus_infinity;
  }

  // dS = P ∘ (dP - D_i) over one row (dp: dP in, dS out): exactly 0 wherever P is.
  static void softmax_backward_row(const float* prob, float D, int64_t nj, float* dp) {
    const typename V::reg Dv = V::set1(D);
    for (int64_t c = 0; c < nj; c += V::width)
      V::store(dp + c, V::mul(V::load(prob + c), V::sub(V::load(dp + c), Dv)));
  }

  static void key_block(const attention_grad_params& g, const float* lse_all, const float* D,
                        int64_t b, int64_t hk, int64_t j0, int64_t nj, backward_scratch& t) {
    static_assert(Bc % V::width == 0);
    const attention_params& p = g.forward;
    const int64_t d = p.d, dv = p.dv, group = p.Hq / p.Hkv;
    const float* k = p.k + b * p.k_stride[0] + hk * p.k_stride[1] + j0 * p.k_stride[2];
    const float* v = p.v + b * p.v_stride[0] + hk * p.v_stride[1] + j0 * p.v_stride[2];
    const int64_t ldk = p.k_stride[2], ldv = p.v_stride[2], ldq = p.q_stride[2];
    const int64_t lddo = g.dout_stride[2];
    float* P = t.P.data();
    float* dS = t.dS.data();
    std::fill(t.dK.begin(), t.dK.end(), 0.0f);
    std::fill(t.dV.begin(), t.dV.end(), 0.0f);
    for (int64_t h = hk * group; h < (hk + 1) * group; ++h)
      for (int64_t i0 = 0; i0 < p.Nq; i0 += Br) {
        const int64_t ni = std::min(Br, p.Nq - i0);
        if (tile_hidden(p, i0, ni, j0)) continue;
        const float* q = p.q + b * p.q_stride[0] + h * p.q_stride[1] + i0 * p.q_stride[2];
        const float* dout =
            g.dout + b * g.dout_stride[0] + h * g.dout_stride[1] + i0 * g.dout_stride[2];
        const float* lse = lse_all + (b * p.Hq + h) * p.Nq + i0;
        const float* Drow = D + (b * p.Hq + h) * p.Nq + i0;
        float* dq = t.dQ + ((b * p.Hq + h) * p.Nq + i0) * d;
        // S = scale·Q·K^T, then P = exp(S + bias - lse) row by row.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, d, p.scale, q, ldq, k, ldk,
                    0.0f, P, Bc);
        bool any = false;
        for (int64_t r = 0; r < ni; ++r)
          any |= probabilities_row(p, b, h, i0 + r, j0, nj, lse[r], P + r * Bc);
        if (!any) continue;
        // Attention dropout: Z = P ∘ M/(1-p), built in the dS tile (free until dP is computed),
        // since the softmax backward below needs P itself, also where Z is 0.
        const float* Z = P;
        if (p.dropout_p != 0.0f) {
          for (int64_t r = 0; r < ni; ++r) {
            std::copy(P + r * Bc, P + r * Bc + nj, dS + r * Bc);
            apply_attention_dropout(p, b, h, i0 + r, j0, nj, dS + r * Bc);
          }
          Z = dS;
        }
        // dV += Z^T·dO;  dZ = dO·V^T;  dP = dZ ∘ M/(1-p);  dS = P ∘ (dP - D).
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nj, dv, ni, 1.0f, Z, Bc, dout, lddo,
                    1.0f, t.dV.data(), dv);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, dv, 1.0f, dout, lddo, v, ldv,
                    0.0f, dS, Bc);
        for (int64_t r = 0; r < ni; ++r) {
          apply_attention_dropout(p, b, h, i0 + r, j0, nj, dS + r * Bc);
          softmax_backward_row(P + r * Bc, Drow[r], nj, dS + r * Bc);
        }
        // dQ += scale·dS·K;  dK += scale·dS^T·Q.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, d, nj, p.scale, dS, Bc, k, ldk,
                    1.0f, dq, d);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nj, d, ni, p.scale, dS, Bc, q, ldq,
                    1.0f, t.dK.data(), d);
      }
    for (int64_t j = 0; j < nj; ++j) {
      float* dk = g.dk + b * g.dk_stride[0] + hk * g.dk_stride[1] + (j0 + j) * g.dk_stride[2];
      float* dvo = g.dv + b * g.dv_stride[0] + hk * g.dv_stride[1] + (j0 + j) * g.dv_stride[2];
      for (int64_t c = 0; c < d; ++c) dk[c * g.dk_stride[3]] = t.dK[j * d + c];
      for (int64_t c = 0; c < dv; ++c) dvo[c * g.dv_stride[3]] = t.dV[j * dv + c];
    }
  }
};

}  // namespace qkv::detail
