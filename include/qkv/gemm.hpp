// The library's one single-precision matrix product, for everything outside the fused attention
// kernels (nn::linear, the MHA projections, the benchmark's composition and roof). It picks the
// BLAS that measured fastest on this CPU class: oneDNN where the CPU has AVX-512, OpenBLAS
// elsewhere (docs/benchmarks.md has the measurements).
#pragma once

#include <cstdint>
#include <string>

namespace qkv {

enum class gemm_backend { automatic, openblas, onednn };
enum class gemm_op { none, transpose };

const char* to_string(gemm_backend backend);
// The concrete backend: a forced one is returned as it is; automatic is the QKV_GEMM
// environment variable (openblas or onednn) when set, else the measured choice for this CPU.
gemm_backend resolve_gemm_backend(gemm_backend requested = gemm_backend::automatic);
// Which library, version and kernel the backend runs, e.g. "oneDNN 2.6.3, ISA avx512_core" or
// "OpenBLAS 0.3.21, core Haswell": what a benchmark should print beside its figures.
std::string gemm_description(gemm_backend backend = gemm_backend::automatic);

// Row-major C[M,N] = alpha·op(A)·op(B) + beta·C, with op(A) [M,K] and op(B) [K,N]; lda, ldb, ldc
// are the row strides of A, B, C as stored. Runs on omp_get_max_threads() threads of the caller.
// At a fixed thread count and backend the result is bit-for-bit the same from run to run
// (training's exact resumption relies on it).
void sgemm(gemm_op op_a, gemm_op op_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           gemm_backend backend = gemm_backend::automatic);

}  // namespace qkv
