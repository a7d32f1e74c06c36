// The BLAS composition forward and backward: qkv::sgemm for every product, heads one after another,
// each sgemm and softmax using all the row's threads.
#include "composition.hpp"

#include <cblas.h>
#include <omp.h>

#include <cmath>

#include "qkv/gemm.hpp"
#include "row_softmax.hpp"

namespace qkv::bench {

void set_blas_threads(int threads) {
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
}

blas_composition::blas_composition(const bench_shape& shape, int threads)
    : s_(shape),
      threads_(threads),
      scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(shape.d)))),
      p_(static_cast<size_t>(shape.B * shape.Hq * shape.Nq * shape.Nk)) {}

double blas_composition::workspace_bytes(const bench_shape& s, bool backward) {
  const double matrix = 4.0 * static_cast<double>(s.Nq) * static_cast<double>(s.Nk);
  return matrix * static_cast<double>(s.B) * static_cast<double>(s.Hq) + (backward ? matrix : 0.0);
}

void blas_composition::forward(const tensor& q, const tensor& k, const tensor& v, tensor& out) {
  const auto [B, Hq, Hkv, Nq, Nk, d, dv, causal, window_left, window_right, kv_type, q_type] =
      s_;  // no window here, f32 K and V
  const int64_t group = Hq / Hkv;
  set_blas_threads(threads_);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t bh = b * Hq + h, bkv = b * Hkv + h / group;
      float* P = p_.data() + bh * Nq * Nk;
      // S = Q·K^T, then P = softmax_rows(scale·S) in place, then O = P·V.
      sgemm(gemm_op::none, gemm_op::transpose, Nq, Nk, d, 1.0f, q.data() + bh * Nq * d, d,
            k.data() + bkv * Nk * d, d, 0.0f, P, Nk);
      softmax_rows(P, Nq, Nk, scale_, causal, threads_);
      sgemm(gemm_op::none, gemm_op::none, Nq, dv, Nk, 1.0f, P, Nk, v.data() + bkv * Nk * dv, dv,
            0.0f, out.data() + bh * Nq * dv, dv);
    }
}

void blas_composition::backward(const tensor& q, const tensor& k, const tensor& v,
                                const tensor& dout, tensor& dq, tensor& dk, tensor& dv_out) {
  // Plain variables, not a structured binding: clang 14 cannot capture one in an OpenMP region.
  const int64_t B = s_.B, Hq = s_.Hq, Hkv = s_.Hkv, Nq = s_.Nq, Nk = s_.Nk, d = s_.d, dv = s_.dv;
  const int64_t group = Hq / Hkv;
  ds_.resize(static_cast<size_t>(Nq * Nk));
  set_blas_threads(threads_);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t bh = b * Hq + h, bkv = b * Hkv + h / group;
      const float* P = p_.data() + bh * Nq * Nk;
      const float* dO = dout.data() + bh * Nq * dv;
      const float* Qh = q.data() + bh * Nq * d;
      const float* Kh = k.data() + bkv * Nk * d;
      const float beta = h % group == 0 ? 0.0f : 1.0f;  // accumulate dK, dV over the group
      float* dS = ds_.data();
      // dV = P^T·dO
      sgemm(gemm_op::transpose, gemm_op::none, Nk, dv, Nq, 1.0f, P, Nk, dO, dv, beta,
            dv_out.data() + bkv * Nk * dv, dv);
      // dP = dO·V^T (into dS), then dS = P∘(dP - rowsum(dP∘P)), row by row.
      sgemm(gemm_op::none, gemm_op::transpose, Nq, Nk, dv, 1.0f, dO, dv, v.data() + bkv * Nk * dv,
            dv, 0.0f, dS, Nk);
#pragma omp parallel for num_threads(threads_) schedule(static)
      for (int64_t i = 0; i < Nq; ++i) {
        const float* p = P + i * Nk;
        float* g = dS + i * Nk;
        float D = 0.0f;
#pragma omp simd reduction(+ : D)
        for (int64_t j = 0; j < Nk; ++j) D += g[j] * p[j];
#pragma omp simd
        for (int64_t j = 0; j < Nk; ++j) g[j] = p[j] * (g[j] - D);
      }
      // dQ = scale·dS·K, dK = scale·dS^T·Q
      sgemm(gemm_op::none, gemm_op::none, Nq, d, Nk, scale_, dS, Nk, Kh, d, 0.0f,
            dq.data() + bh * Nq * d, d);
      sgemm(gemm_op::transpose, gemm_op::none, Nk, d, Nq, scale_, dS, Nk, Qh, d, beta,
            dk.data() + bkv * Nk * d, d);
    }
}

}  // namespace qkv::bench
