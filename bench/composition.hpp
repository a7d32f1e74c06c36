// The BLAS composition a user would write (qkv::sgemm), the baseline of the fused kernel:
// per (batch, head) S = Q·K^T (sgemm), P = softmax_rows(scale·S), O = P·V (sgemm), and its
// backward from the saved P. It holds every head's Nq x Nk matrix P, as autograd would.
// Legend: B batch, Hq/Hkv heads, Nq queries, Nk keys, d, dv head dims.
#pragma once

#include <cstdint>
#include <vector>

#include "qkv/tensor.hpp"
#include "shapes.hpp"

namespace qkv::bench {

class blas_composition {
 public:
  // Workspace for `shape`; BLAS and softmax run on `threads` threads.
  blas_composition(const bench_shape& shape, int threads);

  // Bytes the composition holds for a shape beyond its inputs and outputs (P, and dS for the
  // backward): what decides whether a row fits in memory.
  static double workspace_bytes(const bench_shape& shape, bool backward);

  // q [B,Hq,Nq,d], k [B,Hkv,Nk,d], v [B,Hkv,Nk,dv] -> out [B,Hq,Nq,dv]; keeps P.
  void forward(const tensor& q, const tensor& k, const tensor& v, tensor& out);
  // The gradients of L = sum(out * dout), from the P of the last forward:
  //   dV = P^T·dO, dP = dO·V^T, dS = P∘(dP - rowsum(dP∘P)), dQ = scale·dS·K, dK = scale·dS^T·Q.
  // dk and dv sum over the Hq/Hkv query heads that share a kv head.
  void backward(const tensor& q, const tensor& k, const tensor& v, const tensor& dout, tensor& dq,
                tensor& dk, tensor& dv);

 private:
  bench_shape s_;
  int threads_;
  float scale_;
  std::vector<float> p_;   // [B,Hq,Nq,Nk]
  std::vector<float> ds_;  // [Nq,Nk], one head at a time (backward only)
};

// Makes OpenBLAS and OpenMP use `threads` threads from now on.
void set_blas_threads(int threads);

}  // namespace qkv::bench
