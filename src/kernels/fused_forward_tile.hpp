// The fused attention forward for one task (a block of query rows against a range of keys),
// written once over a vector-operations type V (simd/avx512.hpp, simd/avx2.hpp, simd/portable.hpp)
// and compiled once per SIMD target. Threads, block sizes and the merge of key splits:
// fused_forward.cpp.
//
// Legend: B batch, Hq/Hkv query/kv heads (group = Hq/Hkv), Nq queries, Nk keys, d head dim,
// dv value dim. A "row" is a (query head, query) pair of one kv head: row r is query i = r / group
// of head hk·group + r % group, so that the query heads sharing K and V form one block (GQA/MQA).
// Br rows x Bc keys make a tile; ri indexes rows of the block, jj keys of the tile, c channels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "dropout_lookup.hpp"
#include "fused_forward_plan.hpp"
#include "fused_forward_rows.hpp"
#include "simd/elements.hpp"
#include "simd/exp.hpp"
#include "tile_gemm.hpp"
#include "unroll.hpp"

namespace qkv::detail {

// E: the element type K and V are stored in (float, simd::f16, simd::bf16), widened to fp32 in
// registers as they are read (V::load's overloads): by the packing of a large block, in the
// inner loops of a small block's products.
template <typename V, typename E>
struct fused_forward_kernel {
  using reg = typename V::reg;
  static constexpr int W = V::width;
  // Micro-tiles of MR rows x NV vectors of keys (Q·K^T) or channels (P·V): 6 x 4 vectors with
  // 32 registers, 6 x 2 with 16, i.e. 24 or 12 accumulators beside the NV vectors of the K^T (or
  // V) panel and the broadcast element. With 4 vectors (64 channels) a d = 64 P·V is one panel,
  // which broadcasts each P element once.
  static constexpr int NV = V::registers == 32 ? 4 : 2;
  static constexpr int NR = NV * W;
  static constexpr int MR = (V::registers == 32 ? 24 : 12) / NV;
  static_assert(NR == fused_panel_width(W, V::registers));
  // S = Qs·K^T by the register-tiled product of tile_gemm.hpp: Qs's elements broadcast, the
  // packed K^T panel (pack_kv_tile) as its B.
  using products = tile_gemm<V, NV>;
  static_assert(products::NR == NR && products::MR == MR);
  static_assert(MR <= 16);  // a row group fits the S tile (fused_blocks::s_rows)
  static_assert(MR <= W);   // and its softmax statistics one vector (softmax_rows)
  static constexpr float minus_inf = -std::numeric_limits<float>::infinity();

  // Rows a small block's product asks the cache for while it computes (simd::prefetch_l2): row i
  // is base[at + i·ld, at + i·ld + n). n = 0 asks for nothing.
  struct rows_ahead {
    const E* base = nullptr;
    int64_t at = 0, ld = 0, n = 0;
    void fetch(int64_t i) const { simd::prefetch_l2(base, at + i * ld, n); }
  };

  // st[kk·RG + r] = Qs[r, :]·K[kk, :] for RG rows and nk <= KG keys read in place (row stride
  // ldk): KG·RG = W dot products accumulated over d in W lanes and summed together (lane_sums)
  // into one vector, stored whole: the scores key by key (S^T; small_block_tile turns them into
  // rows), so that a small block reads each K row once and packs nothing. Qs rows are
  // zero-padded to d_pad. With one row, key by key, each K row read front to back (the hardware
  // prefetcher then streams K); with several, the KG keys side by side, so that each Q vector
  // loaded serves KG products. Past nk (a tile's last group), the last key is read again and its
  // lanes are left to the caller. ahead: rows asked for with the keys (the tile's V rows, read
  // next by the P·V), so that memory serves V while K's products run, not only after.
  template <int KG, int RG, bool whole>  // whole: nk == KG
  static void qk_dot(const float* q, int64_t d, int64_t ldq, const E* k, int64_t ldk, int64_t nk,
                     float* st, const rows_ahead& ahead) {
    static_assert(KG * RG == W);
    reg acc[W];
#pragma GCC unroll 16
    for (int i = 0; i < W; ++i) acc[i] = V::zero();
    const E* row[KG];
#pragma GCC unroll 16
    for (int kk = 0; kk < KG; ++kk)
      row[kk] = k + (whole ? kk : std::min<int64_t>(kk, nk - 1)) * ldk;
    const int64_t dw = d / W * W;
    if constexpr (RG == 1) {
#pragma GCC unroll 16
      for (int kk = 0; kk < KG; ++kk) {
        ahead.fetch(kk);
        for (int64_t c = 0; c < dw; c += W)
          acc[kk] = V::fmadd(V::load(q + c), V::load(row[kk] + c), acc[kk]);
      }
    } else {
#pragma GCC unroll 16
      for (int kk = 0; kk < KG; ++kk) ahead.fetch(kk);
      for (int64_t c = 0; c < dw; c += W) {
        reg kc[KG];
#pragma GCC unroll 16
        for (int kk = 0; kk < KG; ++kk) kc[kk] = V::load(row[kk] + c);
#pragma GCC unroll 16
        for (int r = 0; r < RG; ++r) {
          const reg qr = V::load(q + r * ldq + c);
#pragma GCC unroll 16
          for (int kk = 0; kk < KG; ++kk) acc[kk * RG + r] = V::fmadd(qr, kc[kk], acc[kk * RG + r]);
        }
      }
    }
    V::store(st, V::lane_sums(acc));
    for (int64_t c = dw; c < d; ++c)
      for (int kk = 0; kk < nk; ++kk)
        for (int r = 0; r < RG; ++r) st[kk * RG + r] += q[r * ldq + c] * simd::widen(row[kk][c]);
  }

  // O[0:R, 0:NR] = alpha[0:R]·O[0:R, 0:NR] + P[0:R, 0:nk] · V[0:nk, 0:NR]: the online softmax's
  // rescale of the accumulator folded into its load, which is then held in registers over the keys.
  template <int R>
  static void pv_micro(const float* pr, int64_t ldp, int64_t nk, const float* v, int64_t ldv,
                       const float* alpha, float* o, int64_t ldo) {
    reg acc[R][NV];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const reg a = V::set1(alpha[r]);
#pragma GCC unroll 4
      for (int n = 0; n < NV; ++n) acc[r][n] = V::mul(V::load(o + r * ldo + n * W), a);
    }
    for (int64_t jj = 0; jj < nk; ++jj) {
      reg b[NV];
#pragma GCC unroll 4
      for (int n = 0; n < NV; ++n) b[n] = V::load(v + jj * ldv + n * W);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const reg a = V::set1(pr[r * ldp + jj]);
#pragma GCC unroll 4
        for (int n = 0; n < NV; ++n) acc[r][n] = V::fmadd(a, b[n], acc[r][n]);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int n = 0; n < NV; ++n) V::store(o + r * ldo + n * W, acc[r][n]);
  }

  // O[0:R, 0:CV·W] = alpha[0:R]·O[0:R, 0:CV·W] + P[0:R, 0:nk] · V[0:nk, 0:CV·W] with V read in
  // place (row stride ldv): the P·V of a small block, which packs nothing. Each key's V row is
  // loaded once for the R rows.
  template <int R, int CV>
  static void pv_in_place(const float* pr, int64_t ldp, int64_t nk, const E* v, int64_t ldv,
                          const float* alpha, float* o, int64_t ldo, const rows_ahead& ahead) {
    reg acc[R][CV];
    for (int r = 0; r < R; ++r)
      for (int cv = 0; cv < CV; ++cv)
        acc[r][cv] = V::mul(V::load(o + r * ldo + cv * W), V::set1(alpha[r]));
    for (int64_t jj = 0; jj < nk; ++jj) {
      ahead.fetch(jj);
      reg b[CV];
      for (int cv = 0; cv < CV; ++cv) b[cv] = V::load(v + jj * ldv + cv * W);
      for (int r = 0; r < R; ++r) {
        const reg a = V::set1(pr[r * ldp + jj]);
        for (int cv = 0; cv < CV; ++cv) acc[r][cv] = V::fmadd(a, b[cv], acc[r][cv]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int cv = 0; cv < CV; ++cv) V::store(o + r * ldo + cv * W, acc[r][cv]);
  }

  // O = alpha·O + P·V over the dv channels of a small block's n_rows rows: column chunks of CV
  // vectors for groups of up to G rows (G x CV accumulators: 4 x 4 with 32 registers, 4 x 2 with
  // 16; 8 x 2 for more than 4 rows with 32, which widens each 16-bit V row once instead of
  // twice), then single vectors, then the channels past the last whole vector one by one (V's
  // rows are not padded).
  static void pv_block_in_place(const float* s, int64_t lds, int64_t n_rows, int64_t nk, const E* v,
                                int64_t ldv, int64_t dv, const float* alpha, float* o, int64_t ldo,
                                const rows_ahead& ahead) {
    int64_t c = 0;
    const auto chunks = [&]<int G, int CV>() {
      // The passes over V (a column chunk for a group of rows) share the rows asked for ahead:
      // each asks for its slice of every row, so that the requests spread over the whole product.
      const int64_t passes = (dv / (CV * W) + dv % (CV * W) / W) * ((n_rows + G - 1) / G);
      const int64_t slice = passes > 0 ? (ahead.n + passes - 1) / passes : 0;
      int64_t pass = 0;
      const auto ahead_of = [&] {
        const int64_t from = std::min(ahead.n, pass++ * slice);
        return rows_ahead{ahead.base, ahead.at + from, ahead.ld, std::min(slice, ahead.n - from)};
      };
      for (; c + CV * W <= dv; c += CV * W)
        for_groups<G>(n_rows, [&]<int R>(int64_t ri) {
          pv_in_place<R, CV>(s + ri * lds, lds, nk, v + c, ldv, alpha + ri, o + ri * ldo + c, ldo,
                             ahead_of());
        });
      for (; c + W <= dv; c += W)
        for_groups<G>(n_rows, [&]<int R>(int64_t ri) {
          pv_in_place<R, 1>(s + ri * lds, lds, nk, v + c, ldv, alpha + ri, o + ri * ldo + c, ldo,
                            ahead_of());
        });
    };
    if constexpr (V::registers < 32)
      chunks.template operator()<4, 2>();
    else if (n_rows > 4)
      chunks.template operator()<8, 2>();
    else
      chunks.template operator()<4, 4>();
    for (int64_t ri = 0; ri < n_rows; ++ri)
      for (int64_t cc = c; cc < dv; ++cc) {
        float sum = alpha[ri] * o[ri * ldo + cc];
        for (int64_t jj = 0; jj < nk; ++jj) sum += s[ri * lds + jj] * simd::widen(v[jj * ldv + cc]);
        o[ri * ldo + cc] = sum;
      }
  }

  // The keys [j0, j0 + nk) of one kv head (k, v at key j0) in the micro-kernels' panel layouts:
  // K^T as [Bc/NR][d_pad][NR] (panel jp/NR holds keys jp..jp+NR-1 of every channel, zero past
  // nk) and V as [dvp/NR][Bc][NR] (panel c/NR holds channels c..c+NR-1 of every key, zero past dv).
  // A micro-kernel then reads one contiguous panel: rows 512 bytes apart would fall into a few
  // L1 cache sets and evict each other (d or Bc of 128 floats).
  // K and V stored in 16 bits are widened here, as they are packed: the packed tile is the
  // kernel's own fp32 working copy, whatever the storage.
  static void pack_kv_tile(const E* k, const int64_t* ks, const E* v, const int64_t* vs, int64_t nk,
                           int64_t d, int64_t dv, const fused_blocks& bk, const packed_kv& dst) {
    float* kt = dst.kt;
    const int64_t ncp = (nk + NR - 1) / NR * NR, c8 = ks[3] == 1 ? d / 8 * 8 : 0;
    const auto kt_at = [&](int64_t c, int64_t jj) {
      return kt + (jj / NR * bk.d_pad + c) * NR + jj % NR;
    };
    int64_t j8 = 0;
    for (; j8 + 8 <= nk; j8 += 8)
      for (int64_t c = 0; c < c8; c += 8)
        products::transpose8x8(k + j8 * ks[2] + c, ks[2], kt_at(c, j8), NR);
    for (int64_t c = 0; c < d; ++c)
      for (int64_t jj = c < c8 ? j8 : 0; jj < ncp; ++jj)
        *kt_at(c, jj) = jj < nk ? simd::widen(k[jj * ks[2] + c * ks[3]]) : 0.0f;

    for (int64_t c0 = 0; c0 < bk.dvp; c0 += NR) {
      float* panel = dst.v + c0 * dst.keys;
      for (int64_t jj = 0; jj < nk; ++jj) {
        const E* row = v + jj * vs[2] + c0 * vs[3];
        float* dst = panel + jj * NR;
        if (vs[3] == 1 && c0 + NR <= dv) {
          for (int n = 0; n < NV; ++n) V::store(dst + n * W, V::load(row + n * W));
        } else {
          for (int64_t c = 0; c < NR; ++c)
            dst[c] = c0 + c < dv ? simd::widen(row[c * vs[3]]) : 0.0f;
        }
      }
    }
  }

  // Whether any of x[0, n) is not finite: x - x is 0 for a finite x and NaN otherwise, and a sum
  // with a NaN term is NaN. Two sums, so that each addition does not wait for the one before.
  static bool any_not_finite(const float* x, int64_t n) {
    reg bad = V::zero(), bad2 = V::zero();
    int64_t c = 0;
    for (; c + 2 * W <= n; c += 2 * W) {
      const reg v = V::load(x + c), v2 = V::load(x + c + W);
      bad = V::add(bad, V::sub(v, v));
      bad2 = V::add(bad2, V::sub(v2, v2));
    }
    for (; c + W <= n; c += W) {
      const reg v = V::load(x + c);
      bad = V::add(bad, V::sub(v, v));
    }
    float tail = 0.0f;
    for (; c < n; ++c) tail += x[c] - x[c];
    return std::isnan(V::reduce_add(V::add(bad, bad2)) + tail);
  }

  // scale·q of row ri into dst[0, d): in vectors where q is fp32 and unit-stride (a row's scalar
  // loop took 2% of a windowed row's time, which scales as many Q rows as a full row), else
  // element by element, widened from q's storage type. The same products either way.
  static void scaled_query(const attention_params& p, const task_rows& rows, int64_t ri,
                           float* dst) {
    if (p.q_type != dtype::f32 || p.q_stride[3] != 1) return rows.scaled_query(ri, dst);
    const float* q = static_cast<const float*>(p.q) + rows.query_at(ri);
    const reg scale = V::set1(p.scale);
    int64_t c = 0;
    for (; c + W <= p.d; c += W) V::store(dst + c, V::mul(V::load(q + c), scale));
    for (; c < p.d; ++c) dst[c] = p.scale * q[c];
  }

  // A task's working state in the per-thread scratch (fused_blocks::scratch_floats).
  struct block_state {
    float* qs;        // [Br, d_pad]   scale·Q of the block's rows
    float* kv;        // the K and V tile, packed (pack_kv_tile)
    float* s;         // [s_rows, Bc]  S, then P, of a row group's (or a small block's) tile
    float* o;         // [Br, dvp]     unnormalised O accumulator
    float* m;         // [Br]          running row maximum of S
    float* l;         // [Br]          running sum of exp(S - m)
    float* alpha;     // [Br]          exp(m_old - m_new): the tile's rescale of O
    float* poisoned;  // [Br]          1 once the NaN rule poisons the row

    block_state(const fused_blocks& bk, float* scratch)
        : qs(scratch),
          kv(qs + bk.lines(bk.Br * bk.d_pad)),
          s(kv + bk.kv_tile_floats()),
          o(s + bk.lines(bk.s_rows() * bk.Bc)),
          m(o + bk.lines(bk.Br * bk.dvp)),
          l(m + bk.lines(bk.Br)),
          alpha(l + bk.lines(bk.Br)),
          poisoned(alpha + bk.lines(bk.Br)) {}
  };

  // The NaN rule on the raw scores of row ri's band in the tile [j0, j0 + nk), then the
  // modifiers, the mask and -inf outside the band over the columns [c0, c1) that the softmax
  // reads (srow: the row's S, tile column 0). raw_finite: the caller knows every raw score of
  // the columns [c0, c1) to be finite (the Q·K^T product checks what it stores), so the band
  // needs no pass of its own.
  static void prepare(const task_rows& rows, const block_state& st, int64_t ri, int64_t j0,
                      int64_t nk, int64_t c0, int64_t c1, float* srow, bool raw_finite = false) {
    const key_band band = rows.tile_band(ri, j0, nk);
    if (!raw_finite && any_not_finite(srow + band.lo, band.hi - band.lo)) st.poisoned[ri] = 1.0f;
    if (rows.prepare_row(ri, j0, nk, c0, c1, srow)) st.poisoned[ri] = 1.0f;
  }

  // The online softmax of rows [ri, ri + n) (n <= min(W, 8); row r's S at s + r·lds) over the
  // tile's columns [c0, c1) (multiples of W, -inf where hidden; P is read only there): m' = max(m,
  // max_j S_j); P_j = exp(S_j - m'); l' = l·exp(m - m') + sum_j P_j; alpha = exp(m - m') rescales O
  // in the P·V product. The rows' maxima are found first, so that their alphas take one vector exp
  // (exp(-inf) = 0 for a row whose first visible keys these are). A row with nothing visible yet
  // keeps m = -inf, l = 0 and gets P = 0, alpha = 1.
  static void softmax_rows(const attention_params& p, const fused_task& t, const task_rows& rows,
                           const block_state& st, int64_t ri, int64_t n, int64_t j0, int64_t nk,
                           int64_t c0, int64_t c1, float* s, int64_t lds) {
    float m_old[W] = {}, m_new[W] = {}, alpha[W];
    // The rows' maxima side by side: one chain of vector maxima per row, so that each maximum
    // does not wait for the one before it (a single row's chain ran at the max's latency).
    const auto maxima = [&]<int R>(int64_t) {
      reg mx[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) mx[r] = V::set1(minus_inf);
      for (int64_t jj = c0; jj < c1; jj += W)
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) mx[r] = V::max(mx[r], V::load(s + r * lds + jj));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        m_old[r] = st.m[ri + r];
        m_new[r] = std::max(m_old[r], V::reduce_max(mx[r]));
      }
    };
    for_last_group<8>(n, 0, maxima);
    V::store(alpha, simd::exp<V>(V::sub(V::load(m_old), V::load(m_new))));
    for (int64_t r = 0; r < n; ++r) {
      float* srow = s + r * lds;
      if (m_new[r] == minus_inf) {
        std::fill(srow + c0, srow + c1, 0.0f);
        st.alpha[ri + r] = 1.0f;
        continue;
      }
      const reg mv = V::set1(m_new[r]);
      reg sum = V::zero();
      for (int64_t jj = c0; jj < c1; jj += W) {
        const reg e = simd::exp<V>(V::sub(V::load(srow + jj), mv));
        V::store(srow + jj, e);
        sum = V::add(sum, e);
      }
      st.alpha[ri + r] = alpha[r];
      st.l[ri + r] = st.l[ri + r] * alpha[r] + V::reduce_add(sum);
      st.m[ri + r] = m_new[r];
      // Attention dropout after l has summed the un-dropped P: O accumulates P ⊙ M/(1-p).
      apply_attention_dropout(p, t.b, rows.head(ri + r), rows.query(ri + r), j0, nk, srow);
    }
  }

  // Rows [ri, ri + R) of a large block against the packed tile at key j0: S = Qs·K^T, the
  // softmax and O = alpha·O + P·V, one group at a time, so that the group's R x Bc scores stay
  // in L1 between the three steps (the whole block's S would not: 192 x 128 floats is twice
  // the L1 of the machines measured). Only the panels and columns of the group's band are
  // touched: a window's or the causal diagonal's rows cover part of the tile.
  template <int R>
  static void group_tile(const attention_params& p, const fused_task& t, const task_rows& rows,
                         const fused_blocks& bk, const block_state& st, int64_t ri, int64_t j0,
                         int64_t nk, const packed_kv& tile) {
    const key_band band = rows.group_band(ri, R, j0, nk);
    if (band.empty()) return;  // nothing visible: m, l and O stay as they are
    const int64_t ldq = bk.d_pad, Bc = bk.Bc;
    // The columns [c0, c1) that the softmax reads: the band in whole vectors. A panel that holds
    // a band edge is computed only over those vectors: a 64-key panel would otherwise waste up to
    // 63 keys per edge, an eighth of a 512-key window.
    const int64_t c0 = band.lo / W * W, c1 = (band.hi + W - 1) / W * W;
    // The product checks its scores as it stores them: the NaN rule then reads a row's band
    // again only if some score of the group's columns is not finite.
    reg not_finite = V::zero();
    for (int64_t jp = c0 / NR * NR; jp < c1; jp += NR) {
      const int64_t from = std::max(jp, c0), vectors = (std::min(jp + NR, c1) - from) / W;
      const auto part = [&]<int NP>(int64_t) {
        products::template micro<R, false, false, NP, true>(st.qs + ri * ldq, ldq, p.d,
                                                            tile.kt + jp * ldq + (from - jp), 1.0f,
                                                            st.s + from, Bc, &not_finite);
      };
      for_last_group<NV>(vectors, 0, part);
    }
    const bool finite = !std::isnan(V::reduce_add(not_finite));
    for (int r = 0; r < R; ++r) prepare(rows, st, ri + r, j0, nk, c0, c1, st.s + r * Bc, finite);
    softmax_rows(p, t, rows, st, ri, R, j0, nk, c0, c1, st.s, Bc);
    for (int64_t c = 0; c < bk.dvp; c += NR)
      pv_micro<R>(st.s + band.lo, Bc, band.hi - band.lo, tile.v + c * tile.keys + band.lo * NR, NR,
                  st.alpha + ri, st.o + ri * bk.dvp + c, bk.dvp);
  }

  // A small block (at most 8 rows) against the keys [j0, j0 + nk) read in place: Q·K^T as dot
  // products in groups of W keys x 1 row, W/2 x 2, W/4 x 4 or W/8 x 8 (rows padded with zero
  // rows to a multiple of 4), K streamed row by row; the softmax; P·V with V in place.
  static void small_block_tile(const attention_params& p, const fused_task& t,
                               const task_rows& rows, const fused_blocks& bk, const block_state& st,
                               const E* kbase, const E* vbase, int64_t j0, int64_t nk) {
    const int64_t n_rows = rows.rows, ldq = bk.d_pad, Bc = bk.Bc, ncp = (nk + NR - 1) / NR * NR;
    const E* k = kbase + j0 * p.k_stride[2];
    const E* v = vbase + j0 * p.v_stride[2];
    const int64_t ldk = p.k_stride[2], ldv = p.v_stride[2];
    // One row's scores go straight to S; several rows' go key by key to st.kv (unused in place),
    // [Bc][RG], then into S's rows: in 8x8 transposes for 8 rows (the tile's last partial block
    // of 8 keys reads zeros past its last group), else one by one.
    const auto dots = [&]<int KG, int RG>() {
      float* st_keys = RG == 1 ? st.s : st.kv;
      const int64_t groups = (nk + KG - 1) / KG * KG;
      if (RG == 8) std::fill(st_keys + groups * RG, st_keys + (nk + 7) / 8 * 8 * RG, 0.0f);
      int64_t jj = 0;
      // The tile's V rows are asked for with its keys: the P·V reads them next.
      for (; jj + KG <= nk; jj += KG)
        qk_dot<KG, RG, true>(st.qs, p.d, ldq, k + jj * ldk, ldk, KG, st_keys + jj * RG,
                             {vbase, (j0 + jj) * ldv, ldv, p.dv});
      if (jj < nk)
        qk_dot<KG, RG, false>(st.qs, p.d, ldq, k + jj * ldk, ldk, nk - jj, st_keys + jj * RG,
                              {vbase, (j0 + jj) * ldv, ldv, p.dv});
      if constexpr (RG == 8) {
        for (jj = 0; jj < nk; jj += 8) V::transpose8x8(st_keys + jj * 8, 8, st.s + jj, Bc);
      } else if constexpr (RG > 1) {
        for (int64_t ri = 0; ri < n_rows; ++ri)
          for (jj = 0; jj < nk; ++jj) st.s[ri * Bc + jj] = st_keys[jj * RG + ri];
      }
    };
    if (n_rows == 1)
      dots.template operator()<W, 1>();
    else if (n_rows == 2)
      dots.template operator()<W / 2, 2>();
    else if (n_rows <= 4)
      dots.template operator()<W / 4, 4>();
    else
      dots.template operator()<W / 8, 8>();
    for (int64_t ri = 0; ri < n_rows; ++ri) prepare(rows, st, ri, j0, nk, 0, ncp, st.s + ri * Bc);
    softmax_rows(p, t, rows, st, 0, n_rows, j0, nk, 0, ncp, st.s, Bc);
    // The P·V asks for the next tile's K rows (the keys past this task's range are a hint only).
    pv_block_in_place(st.s, Bc, n_rows, nk, v, ldv, p.dv, st.alpha, st.o, bk.dvp,
                      {kbase, (j0 + nk) * ldk, ldk, p.d});
  }

  static void run(const attention_params& p, const fused_blocks& bk, const fused_task& t,
                  float* scratch, task_output out) {
    const task_rows rows{p, t};
    const int64_t n_rows = rows.rows, d = p.d, dvp = bk.dvp, ldq = bk.d_pad, Bc = bk.Bc;
    const block_state st(bk, scratch);

    // Qs = scale·Q: S = scale·Q·K^T (docs/contracts.md section 1) with the scale folded into the
    // block once. In place, the rows past the block's up to its padded size are zero (their S is
    // unused).
    if (bk.in_place) std::fill(st.qs, st.qs + bk.Br * ldq, 0.0f);
    for (int64_t ri = 0; ri < n_rows; ++ri) {
      scaled_query(p, rows, ri, st.qs + ri * ldq);
      rows.start(ri, out, st.m[ri], st.l[ri]);
      st.poisoned[ri] = 0.0f;
      std::fill(st.o + ri * dvp, st.o + (ri + 1) * dvp, 0.0f);
    }

    // The tiles that hold the block's band (whole tiles of Bc keys from a multiple of Bc, the
    // layout of the packed K and V).
    const key_band keys = rows.keys();
    const E* kbase = static_cast<const E*>(p.k) + t.b * p.k_stride[0] + t.hk * p.k_stride[1];
    const E* vbase = static_cast<const E*>(p.v) + t.b * p.v_stride[0] + t.hk * p.v_stride[1];
    // Keys packed for the whole head: tiles from the band's first panel, so that a band of at
    // most Bc - NR keys (a window's) is one tile.
    const int64_t align = t.kv.kt ? NR : Bc;
    for (int64_t j0 = keys.lo / align * align; j0 < keys.hi; j0 += Bc) {
      const int64_t nk = std::min(Bc, keys.hi - j0);
      if (p.mask.kind != mask_kind::none && rows.tile_hidden(j0, nk)) continue;
      if (bk.in_place) {
        small_block_tile(p, t, rows, bk, st, kbase, vbase, j0, nk);
        continue;
      }
      // The tile's K and V: packed here (a single row block), or from the head's packed keys,
      // each chunk of which the first task that needs it packs.
      const packed_kv tile = t.kv.kt ? t.kv.from(j0, bk, NR) : packed_kv::at(st.kv, Bc, bk);
      const auto pack = [&](int64_t j, int64_t n, const packed_kv& dst) {
        pack_kv_tile(kbase + j * p.k_stride[2], p.k_stride, vbase + j * p.v_stride[2], p.v_stride,
                     n, d, p.dv, bk, dst);
      };
      if (!t.kv.kt) pack(j0, nk, tile);
      for (int64_t c = j0 / Bc; t.kv.kt && c * Bc < j0 + nk; ++c)
        t.kv.pack_once(
            c, [&] { pack(c * Bc, std::min(Bc, p.Nk - c * Bc), t.kv.from(c * Bc, bk, NR)); });
      for_groups<MR>(
          n_rows, [&]<int R>(int64_t ri) { group_tile<R>(p, t, rows, bk, st, ri, j0, nk, tile); });
    }

    // O = O / l and lse = m + log(l); a row with no visible key gets O = 0, lse = -inf (or the
    // sink), a row whose O is not finite NaN.
    for (int64_t ri = 0; ri < n_rows; ++ri) {
      const float* o = st.o + ri * dvp;
      const bool poisoned = st.poisoned[ri] != 0.0f || any_not_finite(o, p.dv);
      rows.finish(ri, o, 1, st.m[ri], st.l[ri], poisoned, out, dvp);
    }
  }
};

// The entry points of target V, one per K/V storage type (in dtype's order).
template <typename V>
constexpr fused_forward_target fused_forward_kernels() {
  using f32 = fused_forward_kernel<V, float>;
  using f16 = fused_forward_kernel<V, simd::f16>;
  using bf16 = fused_forward_kernel<V, simd::bf16>;
  return {{f32::run, f16::run, bf16::run}, fused_panel_width(V::width, V::registers)};
}

}  // namespace qkv::detail
