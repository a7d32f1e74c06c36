// The fused backward's task, written once over the vector operations V of simd/avx512.hpp,
// simd/avx2.hpp or simd/portable.hpp: for one key block, every Br x Bc tile of P recomputed from
// the saved row statistics, its five products (tile_gemm.hpp's micro-kernels) and its
// element-wise steps (V).
// Legend: B batch, Hq/Hkv query/kv heads, Nq queries, Nk keys, d head dim, dv value dim;
// Br x Bc a tile of queries x keys; i indexes queries, j keys, c tile columns.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "dropout_lookup.hpp"
#include "fused_backward_task.hpp"
#include "simd/exp.hpp"
#include "tile_gemm.hpp"
#include "visibility.hpp"

namespace qkv::detail {

// E: the element type K and V are stored in (float, simd::f16, simd::bf16), widened as they are
// packed; a query block stored in 16 bits is widened into the scratch before its products.
template <typename V, typename E>
struct fused_backward_kernel {
  // Panels of 4 vectors (64 floats) where the 32 registers hold 6 rows x 4 accumulators: at
  // d = 64 a product into dQ, dK or dV is then one panel, whose A tile (P or dS) is read once.
  using gemm = tile_gemm<V, V::registers == 32 ? 4 : 2>;
  static constexpr int64_t Br = backward_Br, Bc = backward_Bc, ldp = backward_ldp;
  static constexpr int64_t NR = gemm::NR;
  static_assert(Bc % NR == 0 && backward_padded(1) % NR == 0 && ldp % V::width == 0);
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

  // Rows [i0, i0 + ni) of query head h as fp32 with their row stride (ldq): in place when Q is
  // f32, else widened into t.qw.
  static const float* query_block(const attention_params& p, int64_t b, int64_t h, int64_t i0,
                                  int64_t ni, backward_scratch& t, int64_t& ldq) {
    const int64_t at = b * p.q_stride[0] + h * p.q_stride[1] + i0 * p.q_stride[2];
    if (p.q_type == dtype::f32) {
      ldq = p.q_stride[2];
      return static_cast<const float*>(p.q) + at;
    }
    ldq = p.d;
    const int64_t bytes = size_in_bytes(p.q_type);
    for (int64_t r = 0; r < ni; ++r)
      simd::widen_row(static_cast<const char*>(p.q) + (at + r * p.q_stride[2]) * bytes, p.q_type,
                      p.d, p.q_stride[3], 1.0f, t.qw.data() + r * p.d);
    return t.qw.data();
  }

  // S = scale·Q·K^T for one tile: rows [0, ni) of q (row stride ldq) against the key block's
  // K^T packed in t.kt, into P (row stride ldp, columns up to nj rounded up to a panel).
  static void scores(const float* q, int64_t ldq, int64_t ni, int64_t nj, int64_t d, float scale,
                     const backward_scratch& t, float* P) {
    gemm::template product<false, false>(ni, nj, d, scale, q, ldq, t.kt.data(), d * NR, P, ldp);
  }

  // The softmax statistics of rows [i0, i0 + ni) of query head h over the given keys and the
  // sink, from the very scores key_block computes (the same packing and micro-kernels, hence the
  // same bits), in float64: m_i the largest, log l_i = log sum_j exp(S_ij - m_i). m = -inf for a
  // row without a visible key or sink.
  static void local_stats(const attention_params& p, int64_t b, int64_t h, int64_t i0, int64_t ni,
                          backward_scratch& t, double* m, double* log_sum) {
    const int64_t hk = h / (p.Hq / p.Hkv);
    const visibility vis(p);
    int64_t ldq = 0;
    const float* q = query_block(p, b, h, i0, ni, t, ldq);
    const double sink = p.sinks ? p.sinks[h] : minus_infinity;
    std::vector<double> sum(static_cast<size_t>(ni), p.sinks ? 1.0 : 0.0);
    std::fill(m, m + ni, sink);
    float* P = t.P.data();
    float* cap = t.cap.empty() ? nullptr : t.cap.data();
    const key_band keys = vis.band(i0, i0 + ni);
    for (int64_t j0 = keys.lo / Bc * Bc; j0 < keys.hi; j0 += Bc) {
      const int64_t nj = std::min(Bc, p.Nk - j0);
      const E* k =
          static_cast<const E*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1] + j0 * p.k_stride[2];
      gemm::pack_columns(k, p.k_stride[2], p.d, nj, t.kt.data(), p.d * NR);
      scores(q, ldq, ni, nj, p.d, p.scale, t, P);
      for (int64_t r = 0; r < ni; ++r) {
        float* s = P + r * ldp;
        const key_band band =
            biased_scores_row(p, vis, b, h, i0 + r, j0, nj, s, cap ? cap + r * ldp : nullptr);
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
    const attention_params& p = g.forward;
    const int64_t d = p.d, dv = p.dv, group = p.Hq / p.Hkv;
    const int64_t d_pad = backward_padded(d), dv_pad = backward_padded(dv);
    const E* k =
        static_cast<const E*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1] + j0 * p.k_stride[2];
    const E* v =
        static_cast<const E*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1] + j0 * p.v_stride[2];
    const int64_t lddo = g.dout_stride[2];
    float* P = t.P.data();
    float* dS = t.dS.data();
    float* cap = p.softcap != 0.0f ? t.cap.data() : nullptr;
    const visibility vis(p);
    // The key block's operands, packed once for all its query blocks: K^T (scores), V^T (dP)
    // and K (dQ).
    gemm::pack_columns(k, p.k_stride[2], d, nj, t.kt.data(), d * NR);
    gemm::pack_columns(v, p.v_stride[2], dv, nj, t.vt.data(), dv * NR);
    gemm::pack_rows(k, p.k_stride[2], nj, d, t.k.data(), Bc * NR);
    std::fill(t.dK.begin(), t.dK.end(), 0.0f);
    std::fill(t.dV.begin(), t.dV.end(), 0.0f);
    for (int64_t h = hk * group; h < (hk + 1) * group; ++h)
      for (int64_t i0 = 0; i0 < p.Nq; i0 += Br) {
        const int64_t ni = std::min(Br, p.Nq - i0);
        const key_band band = vis.band(i0, i0 + ni);
        if (band.hi <= j0 || band.lo >= j0 + nj) continue;  // the tile is outside the band
        int64_t ldq = 0;
        const float* q = query_block(p, b, h, i0, ni, t, ldq);
        const float* dout =
            g.dout + b * g.dout_stride[0] + h * g.dout_stride[1] + i0 * g.dout_stride[2];
        const int64_t row0 = (b * p.Hq + h) * p.Nq + i0;
        const float* m = stats.max + row0;
        const float* log_sum = stats.log_sum + row0;
        const float* Drow = D + row0;
        float* dq = t.dQ + row0 * d_pad;
        // S = scale·Q·K^T, then P = exp((S' - m) - log l) row by row, S' the modified scores.
        scores(q, ldq, ni, nj, d, p.scale, t, P);
        bool any = false;
        for (int64_t r = 0; r < ni; ++r)
          any |= probabilities_row(p, vis, b, h, i0 + r, j0, nj, m[r], log_sum[r], P + r * ldp,
                                   cap ? cap + r * ldp : nullptr);
        if (!any) continue;
        // Attention dropout: Z = P ∘ M/(1-p), built in the dS tile (free until dP is computed),
        // since the softmax backward below needs P itself, also where Z is 0.
        const float* Z = P;
        if (p.dropout_p != 0.0f) {
          for (int64_t r = 0; r < ni; ++r) {
            std::copy(P + r * ldp, P + r * ldp + nj, dS + r * ldp);
            apply_attention_dropout(p, b, h, i0 + r, j0, nj, dS + r * ldp);
          }
          Z = dS;
        }
        // dV += Z^T·dO;  dZ = dO·V^T;  dP = dZ ∘ M/(1-p);  dS = P ∘ (dP - D).
        gemm::pack_rows(dout, lddo, ni, dv, t.dO.data(), Br * NR);
        gemm::template product<true, true>(nj, dv, ni, 1.0f, Z, ldp, t.dO.data(), Br * NR,
                                           t.dV.data(), dv_pad);
        gemm::template product<false, false>(ni, nj, dv, 1.0f, dout, lddo, t.vt.data(), dv * NR, dS,
                                             ldp);
        for (int64_t r = 0; r < ni; ++r) {
          apply_attention_dropout(p, b, h, i0 + r, j0, nj, dS + r * ldp);
          softmax_backward_row(P + r * ldp, Drow[r], nj, cap ? cap + r * ldp : nullptr,
                               dS + r * ldp);
        }
        // dQ += scale·dS·K;  dK += scale·dS^T·Q.
        gemm::template product<false, true>(ni, d, nj, p.scale, dS, ldp, t.k.data(), Bc * NR, dq,
                                            d_pad);
        gemm::pack_rows(q, ldq, ni, d, t.q.data(), Br * NR);
        gemm::template product<true, true>(nj, d, ni, p.scale, dS, ldp, t.q.data(), Br * NR,
                                           t.dK.data(), d_pad);
      }
    for (int64_t j = 0; j < nj; ++j) {
      float* dk = g.dk + b * g.dk_stride[0] + hk * g.dk_stride[1] + (j0 + j) * g.dk_stride[2];
      float* dvo = g.dv + b * g.dv_stride[0] + hk * g.dv_stride[1] + (j0 + j) * g.dv_stride[2];
      for (int64_t c = 0; c < d; ++c) dk[c * g.dk_stride[3]] = t.dK[j * d_pad + c];
      for (int64_t c = 0; c < dv; ++c) dvo[c * g.dv_stride[3]] = t.dV[j * dv_pad + c];
    }
  }
};

// The entry points of target V, one per K/V storage type (in dtype's order).
template <typename V>
constexpr fused_backward_target fused_backward_kernels() {
  return {
      simd::per_storage_type([]<typename E>() { return &fused_backward_kernel<V, E>::key_block; }),
      simd::per_storage_type(
          []<typename E>() { return &fused_backward_kernel<V, E>::local_stats; })};
}

}  // namespace qkv::detail
