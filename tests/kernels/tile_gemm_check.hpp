// The check of tile_gemm.hpp's products on one SIMD target, against a float64 triple loop:
// C (+)= alpha·op(A)·op(B) for M, N, K in {1, 3, 17, 59, 97}, op(A) in {A, A^T} (read in place,
// with a row stride past the row's end), op(B) in {B, B^T} (packed by pack_rows or
// pack_columns), with and without accumulation, at panel widths of 2 and 4 vectors. Include it
// after the target's pragma and its simd header, gtest before: every function here is a template
// or has internal linkage, so that each translation unit keeps its own target's code.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/tile_gemm.hpp"

namespace qkv::testing {
namespace {

// The largest error of C against the float64 result divided by the bound of fp32 summation:
// (2K + 4)·2^-24·(sum_k |alpha·a·b| + |C0|) per element (one rounding per multiply and per add,
// unfused on the portable target, plus the scale and the add to C). A ratio above 1 fails.
// Also checks that the product leaves alone every float outside C[0:M, 0:padded(N)] and puts
// B's zero padding into the columns from N up to padded(N).
template <typename G, bool a_trans, bool accumulate>
double worst_ratio(int64_t M, int64_t N, int64_t K, bool b_trans, std::mt19937& rng,
                   std::string& failure) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const auto random = [&](size_t n) {
    std::vector<float> x(n);
    for (float& e : x) e = u(rng);
    return x;
  };
  const float alpha = 0.375f;
  // op(A)[r, k]: A is [M x K] (row stride K + 5) or A^T is, A being [K x M] (row stride M + 5).
  const int64_t lda = (a_trans ? M : K) + 5;
  const std::vector<float> a = random(static_cast<size_t>((a_trans ? K : M) * lda));
  const auto op_a = [&](int64_t r, int64_t k) { return a_trans ? a[k * lda + r] : a[r * lda + k]; };
  // op(B)[k, n]: B is [K x N] (row stride N + 3) or B^T is, B being [N x K] (row stride K + 3).
  const int64_t ldb = (b_trans ? K : N) + 3;
  const std::vector<float> b = random(static_cast<size_t>((b_trans ? N : K) * ldb));
  const auto op_b = [&](int64_t k, int64_t n) { return b_trans ? b[n * ldb + k] : b[k * ldb + n]; };
  const int64_t panel_stride = K * G::NR;
  std::vector<float> packed(static_cast<size_t>(G::padded(N) / G::NR * panel_stride), NAN);
  if (b_trans)
    G::pack_columns(b.data(), ldb, K, N, packed.data(), panel_stride);
  else
    G::pack_rows(b.data(), ldb, K, N, packed.data(), panel_stride);
  // C [M+1 x ldc] with a row and 7 columns past the product's reach, all random to start.
  const int64_t ldc = G::padded(N) + 7;
  const std::vector<float> c0 = random(static_cast<size_t>((M + 1) * ldc));
  std::vector<float> c = c0;
  G::template product<a_trans, accumulate>(M, N, K, alpha, a.data(), lda, packed.data(),
                                           panel_stride, c.data(), ldc);
  double worst = 0.0;
  for (int64_t r = 0; r <= M; ++r)
    for (int64_t n = 0; n < ldc; ++n) {
      const float got = c[r * ldc + n], start = c0[r * ldc + n];
      if (r == M || n >= G::padded(N)) {
        if (got != start)
          failure = "wrote outside C at " + std::to_string(r) + "," + std::to_string(n);
        continue;
      }
      if (n >= N) {
        if (got != (accumulate ? start : 0.0f))
          failure = "padding column " + std::to_string(n) + " is not B's zero padding";
        continue;
      }
      double exact = accumulate ? start : 0.0, magnitude = accumulate ? std::fabs(start) : 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double term = static_cast<double>(alpha) * op_a(r, k) * op_b(k, n);
        exact += term;
        magnitude += std::fabs(term);
      }
      const double bound = (2.0 * K + 4.0) * 0x1p-24 * magnitude;
      worst = std::max(worst, std::fabs(got - exact) / std::max(bound, 1e-30));
    }
  return worst;
}

template <typename G>
void check_tile_gemm(const std::string& target) {
  std::mt19937 rng(12);
  for (int64_t M : {1, 3, 17, 59, 97})
    for (int64_t N : {1, 3, 17, 59, 97})
      for (int64_t K : {1, 3, 17, 59, 97})
        for (bool b_trans : {false, true}) {
          std::string failure;
          const double ratios[] = {worst_ratio<G, false, false>(M, N, K, b_trans, rng, failure),
                                   worst_ratio<G, false, true>(M, N, K, b_trans, rng, failure),
                                   worst_ratio<G, true, false>(M, N, K, b_trans, rng, failure),
                                   worst_ratio<G, true, true>(M, N, K, b_trans, rng, failure)};
          const std::string where = target + " NR=" + std::to_string(G::NR) +
                                    " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                                    " K=" + std::to_string(K) + (b_trans ? " B^T" : " B");
          EXPECT_EQ(failure, "") << where;
          for (int v = 0; v < 4; ++v)
            EXPECT_LE(ratios[v], 1.0)
                << where << (v & 2 ? " A^T" : " A") << (v & 1 ? " accumulate" : "");
        }
}

}  // namespace
}  // namespace qkv::testing
