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
#include "visibility.hpp"

namespace qkv::detail {

template <typename V>
struct fused_backward_kernel {
  static constexpr int64_t Br = backward_Br, Bc = backward_Bc;
  static constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

  // The softmax's input over one row of the tile from its raw scores (s = scale·q·k, in place):
  // softcap, ALiBi and the mask as the forward applies them (visibility.hpp), -inf outside the
  // row's band. With a softcap, cap[c] = 1 - tanh^2(raw/c) = dS/d raw. Returns the row's band.
  static key_band biased_scores_row(const attention_params& p, const visibility& vis, int64_t b,
                                    int64_t h, int64_t i, int64_t j0, int64_t nj, float* s,
                                    float* cap) {
    const key_band full = vis.band(i);
    const int64_t lo = std::clamp<int64_t>(full.lo - j0, 0, nj);
    const key_band band{lo, std::clamp<int64_t>(full.hi - j0, lo, nj)};
    if (p.softcap != 0.0f)
      for (int64_t c = band.lo; c < band.hi; ++c) {
        const float t = std::tanh(s[c] / p.softcap);
        s[c] = p.softcap * t;
        cap[c] = 1.0f - t * t;
      }
    if (p.alibi_slopes)
      for (int64_t c = band.lo; c < band.hi; ++c)
        s[c] -= p.alibi_slopes[h] * static_cast<float>(vis.distance(i, j0 + c));
    if (p.mask.kind != mask_kind::none) {
      const mask_row mask(p, b, h, i);
      for (int64_t c = band.lo; c < band.hi; ++c) s[c] += mask.bias(j0 + c);
    }
    std::fill(s, s + band.lo, minus_infinity);
    return band;
  }

  // P_ij = exp((S_ij - m_i) - log l_i) over one row of the tile (s: the raw scores, in place),
  // from the forward's row statistics. Hidden keys and a row with m = -inf (no visible key, no
  // sink) give exactly 0; a row the NaN rule poisoned (m NaN) gives NaN over its band, which the
  // vector exp would turn into 0. Returns whether the row has a key in its band here.
  static bool probabilities_row(const attention_params& p, const visibility& vis, int64_t b,
                                int64_t h, int64_t i, int64_t j0, int64_t nj, float m,
                                float log_sum, float* s, float* cap) {
    if (m == minus_infinity) {
      std::fill(s, s + nj, 0.0f);
      return false;
    }
    const key_band band = biased_scores_row(p, vis, b, h, i, j0, nj, s, cap);
    if (std::isnan(m)) {
      std::fill(s, s + nj, 0.0f);
      std::fill(s + band.lo, s + band.hi, m);
      return !band.empty();
    }
    // Whole vectors over the band, from a multiple of the width (the columns before the band
    // hold -inf, whose exp is 0) up to the row's padded length (Bc is a multiple of the width);
    // then 0 outside.
    const typename V::reg mv = V::set1(m), lv = V::set1(log_sum);
    const int64_t first = band.lo / V::width * V::width;
    for (int64_t c = first; c < band.hi; c += V::width)
      V::store(s + c, simd::exp<V>(V::sub(V::sub(V::load(s + c), mv), lv)));
    std::fill(s, s + first, 0.0f);
    std::fill(s + band.hi, s + nj, 0.0f);
    return !band.empty();
  }

  // The softmax statistics of rows [i0, i0 + ni) of query head h over the given keys and the
  // sink, from the very scores key_block computes (the same tiles and products, hence the same
  // bits), in float64: m_i the largest, log l_i = log sum_j exp(S_ij - m_i). m = -inf for a row
  // without a visible key or sink. P is scratch [Br,Bc], cap [Br,Bc].
  static void local_stats(const attention_params& p, int64_t b, int64_t h, int64_t i0, int64_t ni,
                          float* P, float* cap, double* m, double* log_sum) {
    const int64_t hk = h / (p.Hq / p.Hkv);
    const visibility vis(p);
    const float* q = p.q + b * p.q_stride[0] + h * p.q_stride[1] + i0 * p.q_stride[2];
    const double sink = p.sinks ? p.sinks[h] : minus_infinity;
    std::vector<double> sum(static_cast<size_t>(ni), p.sinks ? 1.0 : 0.0);
    std::fill(m, m + ni, sink);
    const key_band keys = vis.band(i0, i0 + ni);
    for (int64_t j0 = keys.lo / Bc * Bc; j0 < keys.hi; j0 += Bc) {
      const int64_t nj = std::min(Bc, p.Nk - j0);
      const float* k = p.k + b * p.k_stride[0] + hk * p.k_stride[1] + j0 * p.k_stride[2];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, p.d, p.scale, q, p.q_stride[2],
                  k, p.k_stride[2], 0.0f, P, Bc);
      for (int64_t r = 0; r < ni; ++r) {
        float* s = P + r * Bc;
        const key_band band = biased_scores_row(p, vis, b, h, i0 + r, j0, nj, s, cap + r * Bc);
        float tile_max = minus_infinity;
        for (int64_t c = band.lo; c < band.hi; ++c) tile_max = std::max(tile_max, s[c]);
        if (tile_max == minus_infinity) continue;
        const double m_new = std::max<double>(m[r], tile_max);
        double tile_sum = 0.0;
        for (int64_t c = band.lo; c < band.hi; ++c) tile_sum += std::exp(s[c] - m_new);
        sum[r] = sum[r] * std::exp(m[r] - m_new) + tile_sum;
        m[r] = m_new;
      }
    }
    for (int64_t r = 0; r < ni; ++r) log_sum[r] = sum[r] > 0.0 ? std::log(sum[r]) : minus_infinity;
  }

  // dS = P ∘ (dP - D_i) over one row (dp: dP in, dS out), then through the softcap (cap). Exactly
  // 0 wherever P is, and where P = 1: the row's other probabilities then sum to below half an
  // fp32 ulp of 1, so the exact dS there, sum_{other j} P_j·(dP - dP_j), is below the rounding of
  // dP - D, which a large scale would otherwise amplify into the gradients.
  static void softmax_backward_row(const float* prob, float D, int64_t nj, const float* cap,
                                   float* dp) {
    const typename V::reg Dv = V::set1(D);
    for (int64_t c = 0; c < nj; c += V::width) {
      const typename V::reg pv = V::load(prob + c);
      typename V::reg ds = V::mul(pv, V::sub(V::load(dp + c), Dv));
      if (cap) ds = V::mul(ds, V::load(cap + c));
      V::store(dp + c, ds);
    }
    for (int64_t c = 0; c < nj; ++c)
      if (prob[c] == 1.0f) dp[c] = 0.0f;
  }

  static void key_block(const attention_grad_params& g, const row_statistics& stats, const float* D,
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
    float* cap = p.softcap != 0.0f ? t.cap.data() : nullptr;
    const visibility vis(p);
    std::fill(t.dK.begin(), t.dK.end(), 0.0f);
    std::fill(t.dV.begin(), t.dV.end(), 0.0f);
    for (int64_t h = hk * group; h < (hk + 1) * group; ++h)
      for (int64_t i0 = 0; i0 < p.Nq; i0 += Br) {
        const int64_t ni = std::min(Br, p.Nq - i0);
        const key_band band = vis.band(i0, i0 + ni);
        if (band.hi <= j0 || band.lo >= j0 + nj) continue;  // the tile is outside the band
        const float* q = p.q + b * p.q_stride[0] + h * p.q_stride[1] + i0 * p.q_stride[2];
        const float* dout =
            g.dout + b * g.dout_stride[0] + h * g.dout_stride[1] + i0 * g.dout_stride[2];
        const int64_t row0 = (b * p.Hq + h) * p.Nq + i0;
        const float* m = stats.max + row0;
        const float* log_sum = stats.log_sum + row0;
        const float* Drow = D + (b * p.Hq + h) * p.Nq + i0;
        float* dq = t.dQ + ((b * p.Hq + h) * p.Nq + i0) * d;
        // S = scale·Q·K^T, then P = exp((S' - m) - log l) row by row, S' the modified scores.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, d, p.scale, q, ldq, k, ldk,
                    0.0f, P, Bc);
        bool any = false;
        for (int64_t r = 0; r < ni; ++r)
          any |= probabilities_row(p, vis, b, h, i0 + r, j0, nj, m[r], log_sum[r], P + r * Bc,
                                   cap ? cap + r * Bc : nullptr);
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
          softmax_backward_row(P + r * Bc, Drow[r], nj, cap ? cap + r * Bc : nullptr, dS + r * Bc);
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
