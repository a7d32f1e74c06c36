// Register-tiled products of small tiles, written once over a vector-operations type V
// (simd/avx512.hpp, simd/avx2.hpp, simd/portable.hpp) and compiled once per SIMD target:
//
//     C[0:M, 0:N] = (accumulate ? C : 0) + alpha · op(A)[0:M, 0:K] · B[0:K, 0:N]
//
// op(A) is A or A^T read in place (any row stride): each of its elements is broadcast once per
// micro-tile, so its layout costs nothing. B is packed beforehand into panels of NR columns
// (pack_rows for B itself, pack_columns for B = X^T), so that a micro-tile reads one contiguous
// panel: rows of a tile 512 bytes apart would fall into a few L1 sets and evict each other. A tile
// product reuses a panel over every row group of A, and a caller reuses it over every tile that
// shares the operand (the backward's K, K^T and V^T over all the query blocks of a key block).
// Legend: M x N the product, K the summed dimension; r indexes rows, k the sum, n panel columns.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "simd/elements.hpp"
#include "unroll.hpp"

namespace qkv::detail {

template <typename V, int NV = 2>
struct tile_gemm {
  using reg = typename V::reg;
  static constexpr int W = V::width;
  static constexpr int NR = NV * W;  // panel width: NV vectors of C's columns
  // Micro-tile height: MR rows x NV vectors of accumulators, with the NV vectors of the B panel
  // and the broadcast element of A beside them (24 + NV + 1 of 32 registers, 12 + NV + 1 of 16).
  static constexpr int MR = (V::registers == 32 ? 24 : 12) / NV;

  // Columns rounded up to whole panels: the width C's rows and the packed panels must have.
  static constexpr int64_t padded(int64_t n) { return (n + NR - 1) / NR * NR; }

  // C[0:R, 0:NP·W] (+)= alpha · sum_k op(A)[r, k] · panel[k, 0:NP·W]. op(A)[r, k] is
  // a[k·lda + r] when a_trans (A^T: one row of A holds R consecutive elements), else
  // a[r·lda + k]. NP < NV computes only part of a panel (from a vector inside it: panel and c
  // both advanced by that many floats), for the columns a caller needs at a band's edge. The sum
  // runs in order of k with one fused multiply-add per term, whatever R and NP: a row's result
  // does not depend on the rows or columns it is grouped with.
  // check: *not_finite gets a NaN lane if any product written is NaN or infinite (acc·0 + x is
  // x for a finite acc and NaN otherwise), one multiply-add per vector of products: a caller
  // that must find non-finite values (the forward's NaN rule) then reads the tile again only in
  // the rare case that there is one. alpha = 1 stores the products unscaled.
  template <int R, bool a_trans, bool accumulate, int NP = NV, bool check = false>
  static void micro(const float* a, int64_t lda, int64_t K, const float* panel, float alpha,
                    float* c, int64_t ldc, reg* not_finite = nullptr) {
    static_assert(NP >= 1 && NP <= NV);
    // The loops over r and the vectors are unrolled whole, so that the accumulators stay in
    // registers: a loop left rolled indexes them, which puts them on the stack.
    reg acc[R][NP];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NP; ++v) acc[r][v] = V::zero();
    for (int64_t k = 0; k < K; ++k) {
      reg b[NP];
#pragma GCC unroll 4
      for (int v = 0; v < NP; ++v) b[v] = V::load(panel + k * NR + v * W);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const reg x = V::set1(a_trans ? a[k * lda + r] : a[r * lda + k]);
#pragma GCC unroll 4
        for (int v = 0; v < NP; ++v) acc[r][v] = V::fmadd(x, b[v], acc[r][v]);
      }
    }
    if constexpr (check) {
      // One chain per vector column, so that the multiply-adds do not wait on one another.
      reg bad[NP];
#pragma GCC unroll 4
      for (int v = 0; v < NP; ++v) bad[v] = v == 0 ? *not_finite : V::zero();
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NP; ++v) bad[v] = V::fmadd(acc[r][v], V::zero(), bad[v]);
#pragma GCC unroll 4
      for (int v = 1; v < NP; ++v) bad[0] = V::add(bad[0], bad[v]);
      *not_finite = bad[0];
    }
    if (!accumulate && alpha == 1.0f) {
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NP; ++v) V::store(c + r * ldc + v * W, acc[r][v]);
      return;
    }
    const reg scale = V::set1(alpha);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NP; ++v) {
        float* out = c + r * ldc + v * W;
        if constexpr (accumulate)
          V::store(out, V::fmadd(acc[r][v], scale, V::load(out)));
        else
          V::store(out, V::mul(acc[r][v], scale));
      }
  }

  // C[0:M, 0:padded(N)] (+)= alpha · op(A)[0:M, 0:K] · B[0:K, 0:N], B packed by pack_rows or
  // pack_columns with panels panel_stride floats apart. C's columns from N up to padded(N) get
  // the product with B's zero padding (0, or C unchanged when accumulating); its row stride ldc
  // is at least padded(N). Panel by panel, so that one panel stays in L1 for every row group.
  template <bool a_trans, bool accumulate>
  static void product(int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t lda,
                      const float* b, int64_t panel_stride, float* c, int64_t ldc) {
    for (int64_t n = 0; n < N; n += NR) {
      const float* panel = b + n / NR * panel_stride;
      for_groups<MR>(M, [&]<int R>(int64_t r) {
        micro<R, a_trans, accumulate>(a + (a_trans ? r : r * lda), lda, K, panel, alpha,
                                      c + r * ldc + n, ldc);
      });
    }
  }

  // B[0:K, 0:N] (row k at b + k·ldb, unit column stride) into panels: panel n/NR holds
  // columns n..n+NR-1 of every row, [K][NR], zero past N; panels are panel_stride floats apart.
  // B may be stored in any element type E (float, simd::f16, simd::bf16): widened as it is packed.
  template <typename E>
  static void pack_rows(const E* b, int64_t ldb, int64_t K, int64_t N, float* dst,
                        int64_t panel_stride) {
    for (int64_t n = 0; n < N; n += NR) {
      float* panel = dst + n / NR * panel_stride;
      const int64_t width = std::min<int64_t>(NR, N - n);
      for (int64_t k = 0; k < K; ++k) {
        const E* src = b + k * ldb + n;
        float* out = panel + k * NR;
        if (width == NR) {
          for (int v = 0; v < NV; ++v) V::store(out + v * W, V::load(src + v * W));
        } else {
          for (int64_t c = 0; c < width; ++c) out[c] = simd::widen(src[c]);
          std::fill(out + width, out + NR, 0.0f);
        }
      }
    }
  }

  // B = X^T for X[0:N, 0:K] (row n at x + n·ldx, unit column stride) into the panels of
  // pack_rows: panel n/NR holds X's rows n..n+NR-1 as its columns, [K][NR], zero past N.
  template <typename E>
  static void pack_columns(const E* x, int64_t ldx, int64_t K, int64_t N, float* dst,
                           int64_t panel_stride) {
    const auto at = [&](int64_t k, int64_t n) {
      return dst + n / NR * panel_stride + k * NR + n % NR;
    };
    const int64_t n8 = N / 8 * 8, k8 = K / 8 * 8;
    for (int64_t n = 0; n < n8; n += 8)
      for (int64_t k = 0; k < k8; k += 8) transpose8x8(x + n * ldx + k, ldx, at(k, n), NR);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = k < k8 ? n8 : 0; n < padded(N); ++n)
        *at(k, n) = n < N ? simd::widen(x[n * ldx + k]) : 0.0f;
  }

  // dst[c·ld_dst + r] = src[r·ld_src + c] for an 8x8 block of any element type, widened: a 16-bit
  // block is widened row by row into fp32 first.
  template <typename E>
  static void transpose8x8(const E* src, int64_t ld_src, float* dst, int64_t ld_dst) {
    if constexpr (std::is_same_v<E, float>) {
      V::transpose8x8(src, ld_src, dst, ld_dst);
    } else {
      float block[64];
      for (int r = 0; r < 8; ++r) V::widen8(src + r * ld_src, block + 8 * r);
      V::transpose8x8(block, 8, dst, ld_dst);
    }
  }
};

}  // namespace qkv::detail
