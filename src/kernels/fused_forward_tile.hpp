// The fused attention forward for one task (a block of query rows against a range of keys),
// written once over a vector-operations type V (simd/avx2.hpp, simd/portable.hpp) and compiled
// once per SIMD target. Threads, block sizes and the merge of key splits: fused_forward.cpp.
//
// Legend: B batch, Hq/Hkv query/kv heads (group = Hq/Hkv), Nq queries, Nk keys, d head dim,
// dv value dim. A "row" is a (query head, query) pair of one kv head: row r is query i = r / group
// of head hk·group + r % group, so that the query heads sharing K and V form one block (GQA/MQA).
// Br rows x Bc keys make a tile; ri indexes rows of the block, jj keys of the tile, c channels.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "dropout_lookup.hpp"
#include "fused_forward_plan.hpp"
#include "simd/exp.hpp"

namespace qkv::detail {

template <typename V>
struct fused_forward_kernel {
  using reg = typename V::reg;
  static constexpr int W = V::width;
  static constexpr int NR = 2 * W;  // micro-tile width: 16 keys (Q·K^T) or 16 channels (P·V)
  static constexpr int MR = 6;      // micro-tile height: 6 rows x 2 vectors = 12 accumulators
  static constexpr float minus_inf = -std::numeric_limits<float>::infinity();

  // S[0:R, 0:16] = Qs[0:R, :] · K^T[:, 0:16]: broadcast a scaled query element, multiply it
  // with 16 keys' channel c (K^T packed [d, Bc]), accumulate over c in registers.
  template <int R>
  static void qk_micro(const float* q, int64_t d, int64_t ldq, const float* kt, int64_t ldk,
                       float* s, int64_t lds) {
    reg acc0[R], acc1[R];
    for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = V::zero();
    for (int64_t c = 0; c < d; ++c) {
      const reg b0 = V::load(kt + c * ldk), b1 = V::load(kt + c * ldk + W);
      for (int r = 0; r < R; ++r) {
        const reg a = V::set1(q[r * ldq + c]);
        acc0[r] = V::fmadd(a, b0, acc0[r]);
        acc1[r] = V::fmadd(a, b1, acc1[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      V::store(s + r * lds, acc0[r]);
      V::store(s + r * lds + W, acc1[r]);
    }
  }

  // O[0:R, 0:16] = alpha[0:R]·O[0:R, 0:16] + P[0:R, 0:nk] · V[0:nk, 0:16]: the online softmax's
  // rescale of the accumulator folded into its load, which is then held in registers over the keys.
  template <int R>
  static void pv_micro(const float* pr, int64_t ldp, int64_t nk, const float* v, int64_t ldv,
                       const float* alpha, float* o, int64_t ldo) {
    reg acc0[R], acc1[R];
    for (int r = 0; r < R; ++r) {
      const reg a = V::set1(alpha[r]);
      acc0[r] = V::mul(V::load(o + r * ldo), a);
      acc1[r] = V::mul(V::load(o + r * ldo + W), a);
    }
    for (int64_t jj = 0; jj < nk; ++jj) {
      const reg b0 = V::load(v + jj * ldv), b1 = V::load(v + jj * ldv + W);
      for (int r = 0; r < R; ++r) {
        const reg a = V::set1(pr[r * ldp + jj]);
        acc0[r] = V::fmadd(a, b0, acc0[r]);
        acc1[r] = V::fmadd(a, b1, acc1[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      V::store(o + r * ldo, acc0[r]);
      V::store(o + r * ldo + W, acc1[r]);
    }
  }

  // Calls f.template operator()<R>(ri) for every group of up to MR rows in [0, rows).
  template <typename F>
  static void for_row_groups(int64_t rows, F&& f) {
    int64_t ri = 0;
    for (; ri + MR <= rows; ri += MR) f.template operator()<MR>(ri);
    switch (rows - ri) {
      case 5:
        f.template operator()<5>(ri);
        break;
      case 4:
        f.template operator()<4>(ri);
        break;
      case 3:
        f.template operator()<3>(ri);
        break;
      case 2:
        f.template operator()<2>(ri);
        break;
      case 1:
        f.template operator()<1>(ri);
        break;
      default:
        break;
    }
  }

  // The keys [j0, j0 + nk) of one kv head (k, v at key j0) in the micro-kernels' panel layouts:
  // K^T as [Bc/16][d_pad][16] (panel jp/16 holds keys jp..jp+15 of every channel, zero past nk)
  // and V as [dvp/16][Bc][16] (panel c/16 holds channels c..c+15 of every key, zero past dv).
  // A micro-kernel then reads one contiguous panel: rows 512 bytes apart would fall into a few
  // L1 cache sets and evict each other (d or Bc of 128 floats).
  static void pack_kv_tile(const float* k, const int64_t* ks, const float* v, const int64_t* vs,
                           int64_t nk, int64_t d, int64_t dv, const fused_blocks& bk, float* tile) {
    float* kt = tile;
    const int64_t ncp = (nk + NR - 1) / NR * NR, c8 = ks[3] == 1 ? d / 8 * 8 : 0;
    const auto kt_at = [&](int64_t c, int64_t jj) {
      return kt + (jj / NR * bk.d_pad + c) * NR + jj % NR;
    };
    int64_t j8 = 0;
    for (; j8 + 8 <= nk; j8 += 8)
      for (int64_t c = 0; c < c8; c += 8)
        V::transpose8x8(k + j8 * ks[2] + c, ks[2], kt_at(c, j8), NR);
    for (int64_t c = 0; c < d; ++c)
      for (int64_t jj = c < c8 ? j8 : 0; jj < ncp; ++jj)
        *kt_at(c, jj) = jj < nk ? k[jj * ks[2] + c * ks[3]] : 0.0f;

    float* vp = tile + bk.d_pad * bk.Bc;
    for (int64_t c0 = 0; c0 < bk.dvp; c0 += NR) {
      float* panel = vp + c0 * bk.Bc;
      for (int64_t jj = 0; jj < nk; ++jj) {
        const float* row = v + jj * vs[2] + c0 * vs[3];
        float* dst = panel + jj * NR;
        if (vs[3] == 1 && c0 + NR <= dv) {
          V::store(dst, V::load(row));
          V::store(dst + W, V::load(row + W));
        } else {
          for (int64_t c = 0; c < NR; ++c) dst[c] = c0 + c < dv ? row[c * vs[3]] : 0.0f;
        }
      }
    }
  }

  // The tile of kv head (b, hk) starting at key j0, for fused_task::kv (fused_forward.cpp).
  static void pack_kv_tile(const attention_params& p, const fused_blocks& bk, int64_t b, int64_t hk,
                           int64_t j0, float* tile) {
    pack_kv_tile(p.k + b * p.k_stride[0] + hk * p.k_stride[1] + j0 * p.k_stride[2], p.k_stride,
                 p.v + b * p.v_stride[0] + hk * p.v_stride[1] + j0 * p.v_stride[2], p.v_stride,
                 std::min(bk.Bc, p.Nk - j0), p.d, p.dv, bk, tile);
  }

  // The additive term of row ri's scores from the explicit mask, or whether any key of the
  // tile is visible to it (scan == true). Booleans hide keys with -inf; floats add their value.
  static bool apply_mask(const mask_ref& m, int64_t b, int64_t h, int64_t i, int64_t j0, int64_t nk,
                         float* srow, bool scan) {
    const int64_t base = b * m.stride[0] + h * m.stride[1] + i * m.stride[2] + j0 * m.stride[3];
    const int64_t step = m.stride[3];
    if (m.kind == mask_kind::boolean) {
      const uint8_t* mk = static_cast<const uint8_t*>(m.data) + base;
      for (int64_t jj = 0; jj < nk; ++jj) {
        if (scan && mk[jj * step]) return true;
        if (!scan && !mk[jj * step]) srow[jj] = minus_inf;
      }
    } else {
      const float* mk = static_cast<const float*>(m.data) + base;
      for (int64_t jj = 0; jj < nk; ++jj) {
        if (scan && mk[jj * step] > minus_inf) return true;
        if (!scan) srow[jj] += mk[jj * step];
      }
    }
    return false;
  }

  static void run(const attention_params& p, const fused_blocks& bk, const fused_task& t,
                  float* scratch, fused_sink sink) {
    const int64_t group = p.Hq / p.Hkv, rows = t.r1 - t.r0, d = p.d, dv = p.dv;
    const int64_t Bc = bk.Bc, dvp = bk.dvp, ldq = bk.d_pad;
    float* qs = scratch;                  // [Br, d_pad]  scale·Q of the block's rows
    float* kv = qs + bk.Br * ldq;         // the K and V tile, packed (pack_kv_tile)
    float* s = kv + bk.kv_tile_floats();  // [Br, Bc]     S, then P, of the tile
    float* o = s + bk.Br * Bc;            // [Br, dvp]    unnormalised O accumulator
    float* m = o + bk.Br * dvp;           // [Br]         running row maximum of S
    float* l = m + bk.Br;                 // [Br]         running sum of exp(S - m)
    float* alpha = l + bk.Br;  // [Br]         exp(m_old - m_new), the tile's rescale of O
    const auto head = [&](int64_t ri) { return t.hk * group + (t.r0 + ri) % group; };
    const auto query = [&](int64_t ri) { return (t.r0 + ri) / group; };

    // Qs = scale·Q: S = scale·Q·K^T (DESIGN 2) with the scale folded into the block once.
    for (int64_t ri = 0; ri < rows; ++ri) {
      const float* q =
          p.q + t.b * p.q_stride[0] + head(ri) * p.q_stride[1] + query(ri) * p.q_stride[2];
      for (int64_t c = 0; c < d; ++c) qs[ri * ldq + c] = p.scale * q[c * p.q_stride[3]];
      m[ri] = minus_inf;
      l[ri] = 0.0f;
      std::fill(o + ri * dvp, o + (ri + 1) * dvp, 0.0f);
    }

    // Causal masks: key j is visible to query i iff j <= i + offset; keys past the block's last
    // query's limit are never read, and tiles below the first query's limit need no masking.
    const int64_t offset = p.causal == causal_mode::bottom_right ? p.Nk - p.Nq : 0;
    const bool causal = p.causal != causal_mode::none;
    const int64_t i_first = query(0), i_last = query(rows - 1);
    const int64_t k_end = causal ? std::min(t.k1, i_last + offset + 1) : t.k1;
    const float* kbase = p.k + t.b * p.k_stride[0] + t.hk * p.k_stride[1];
    const float* vbase = p.v + t.b * p.v_stride[0] + t.hk * p.v_stride[1];

    for (int64_t j0 = t.k0; j0 < k_end; j0 += Bc) {
      const int64_t nk = std::min(Bc, k_end - j0), ncp = (nk + NR - 1) / NR * NR;
      const bool causal_partial = causal && j0 + nk - 1 > i_first + offset;
      if (p.mask.kind != mask_kind::none) {  // skip tiles that the mask hides entirely
        bool any = false;
        for (int64_t ri = 0; ri < rows && !any; ++ri) {
          const int64_t n = causal ? std::min(nk, query(ri) + offset - j0 + 1) : nk;
          any = n > 0 && apply_mask(p.mask, t.b, head(ri), query(ri), j0, n, nullptr, true);
        }
        if (!any) continue;
      }

      // Ask for the next tile's K and V rows now: with few rows per block (decode, small
      // prefill) the tile's arithmetic is short and would otherwise wait on memory. (Large
      // blocks leave it to the hardware prefetcher: the requests then cost more than they save.)
      for (int64_t j = j0 + Bc; rows <= 16 && j < std::min(k_end, j0 + 2 * Bc); ++j) {
        for (int64_t c = 0; c < d; c += 16)
          __builtin_prefetch(kbase + j * p.k_stride[2] + c * p.k_stride[3]);
        for (int64_t c = 0; c < dv; c += 16)
          __builtin_prefetch(vbase + j * p.v_stride[2] + c * p.v_stride[3]);
      }

      // Pass 1: S = Qs·K^T for the tile, then the bias: -inf where hidden, the float mask added.
      const float* tile = nullptr;  // the packed K and V tile (micro-kernels only)
      if (bk.blas_tiles) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nk, d, 1.0f, qs, ldq,
                    kbase + j0 * p.k_stride[2], p.k_stride[2], 0.0f, s, Bc);
      } else {
        if (t.kv) {
          tile = t.kv + j0 / Bc * bk.kv_tile_floats();
        } else {
          pack_kv_tile(kbase + j0 * p.k_stride[2], p.k_stride, vbase + j0 * p.v_stride[2],
                       p.v_stride, nk, d, dv, bk, kv);
          tile = kv;
        }
        for (int64_t jp = 0; jp < ncp; jp += NR)
          for_row_groups(rows, [&]<int R>(int64_t ri) {
            qk_micro<R>(qs + ri * ldq, d, ldq, tile + jp * ldq, NR, s + ri * Bc + jp, Bc);
          });
      }
      for (int64_t ri = 0; ri < rows; ++ri) {
        float* srow = s + ri * Bc;
        if (p.mask.kind != mask_kind::none)
          apply_mask(p.mask, t.b, head(ri), query(ri), j0, nk, srow, false);
        const int64_t visible =
            causal_partial ? std::clamp<int64_t>(query(ri) + offset - j0 + 1, 0, nk) : nk;
        std::fill(srow + visible, srow + ncp, minus_inf);
      }

      // Pass 2 (online softmax), per row: m' = max(m, max_j S_j); P_j = exp(S_j - m');
      // l' = l·exp(m - m') + sum_j P_j; alpha = exp(m - m') rescales O in pass 3. A row with
      // nothing visible yet keeps m = -inf, l = 0 and gets P = 0.
      for (int64_t ri = 0; ri < rows; ++ri) {
        float* srow = s + ri * Bc;
        reg mx = V::set1(minus_inf);
        for (int64_t jj = 0; jj < ncp; jj += W) mx = V::max(mx, V::load(srow + jj));
        const float m_new = std::max(m[ri], V::reduce_max(mx));
        if (m_new == minus_inf) {
          std::fill(srow, srow + ncp, 0.0f);
          alpha[ri] = 1.0f;
          continue;
        }
        const reg mv = V::set1(m_new);
        reg sum = V::zero();
        for (int64_t jj = 0; jj < ncp; jj += W) {
          const reg e = simd::exp<V>(V::sub(V::load(srow + jj), mv));
          V::store(srow + jj, e);
          sum = V::add(sum, e);
        }
        alpha[ri] = std::exp(m[ri] - m_new);
        l[ri] = l[ri] * alpha[ri] + V::reduce_add(sum);
        m[ri] = m_new;
        // Attention dropout after l has summed the un-dropped P: O accumulates P ⊙ M/(1-p).
        apply_attention_dropout(p, t.b, head(ri), query(ri), j0, nk, srow);
      }

      // Pass 3: O = alpha·O + P·V for the tile.
      if (bk.blas_tiles) {
        for (int64_t ri = 0; ri < rows; ++ri)
          for (int64_t c = 0; c < dv; ++c) o[ri * dvp + c] *= alpha[ri];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dv, nk, 1.0f, s, Bc,
                    vbase + j0 * p.v_stride[2], p.v_stride[2], 1.0f, o, dvp);
      } else {
        const float* vp = tile + ldq * Bc;
        for (int64_t c = 0; c < dvp; c += NR)
          for_row_groups(rows, [&]<int R>(int64_t ri) {
            pv_micro<R>(s + ri * Bc, Bc, nk, vp + c * Bc, NR, alpha + ri, o + ri * dvp + c, dvp);
          });
      }
    }

    // Pass 4: O = O / l and lse = m + log(l); a row with no visible key gets O = 0, lse = -inf.
    for (int64_t ri = 0; ri < rows; ++ri) {
      const bool empty = l[ri] == 0.0f;
      const float inv = empty ? 0.0f : 1.0f / l[ri];
      const float lse = empty ? minus_inf : m[ri] + std::log(l[ri]);
      if (sink.part_o) {
        for (int64_t c = 0; c < dv; ++c) sink.part_o[ri * dvp + c] = o[ri * dvp + c] * inv;
        sink.part_lse[ri] = lse;
        continue;
      }
      const int64_t h = head(ri), i = query(ri);
      float* out = p.o + t.b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
      for (int64_t c = 0; c < dv; ++c) out[c * p.o_stride[3]] = o[ri * dvp + c] * inv;
      if (p.lse) p.lse[t.b * p.lse_stride[0] + h * p.lse_stride[1] + i * p.lse_stride[2]] = lse;
    }
  }
};

}  // namespace qkv::detail
