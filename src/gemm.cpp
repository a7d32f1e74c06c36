// qkv::sgemm over OpenBLAS or oneDNN. oneDNN dispatches on the instruction set it finds; OpenBLAS
// on the core it detects, which the environment may pin (OPENBLAS_CORETYPE=Haswell keeps older
// builds off newer cores, and with it their AVX-512 kernels).
#include "qkv/gemm.hpp"

#include <cblas.h>
#include <dnnl.h>

#include <cstdlib>
#include <string>

#include "qkv/error.hpp"

namespace qkv {
namespace {

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

// Measured (docs/benchmarks.md): with 512-bit FMA units oneDNN's AVX-512 sgemm is about twice
// OpenBLAS under the Haswell pin; on AVX2-only machines the two are within noise, and OpenBLAS
// stays, as before.
gemm_backend measured_choice() {
  return __builtin_cpu_supports("avx512f") ? gemm_backend::onednn : gemm_backend::openblas;
}

gemm_backend from_environment() {
  const char* env = std::getenv("QKV_GEMM");
  if (!env || !*env) return gemm_backend::automatic;
  const std::string name = env;
  if (name == "openblas") return gemm_backend::openblas;
  if (name == "onednn") return gemm_backend::onednn;
  throw error("QKV_GEMM: expected openblas or onednn, got '" + name + "'");
}

CBLAS_TRANSPOSE cblas_op(gemm_op op) {
  return op == gemm_op::none ? CblasNoTrans : CblasTrans;
}
char dnnl_op(gemm_op op) {
  return op == gemm_op::none ? 'N' : 'T';
}

}  // namespace

const char* to_string(gemm_backend backend) {
  switch (backend) {
    case gemm_backend::openblas:
      return "openblas";
    case gemm_backend::onednn:
      return "onednn";
    default:
      return "automatic";
  }
}

gemm_backend resolve_gemm_backend(gemm_backend requested) {
  if (requested != gemm_backend::automatic) return requested;
  static const gemm_backend chosen = [] {
    const gemm_backend env = from_environment();
    return env != gemm_backend::automatic ? env : measured_choice();
  }();
  return chosen;
}

std::string gemm_description(gemm_backend backend) {
  if (resolve_gemm_backend(backend) == gemm_backend::onednn) {
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + ", ISA " + isa_name(dnnl_get_effective_cpu_isa());
  }
  const std::string config = openblas_get_config();  // "OpenBLAS 0.3.21 NO_LAPACKE ..."
  return config.substr(0, config.find(' ', config.find(' ') + 1)) + ", core " +
         openblas_get_corename();
}

void sgemm(gemm_op op_a, gemm_op op_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           gemm_backend backend) {
  if (M == 0 || N == 0) return;
  if (resolve_gemm_backend(backend) == gemm_backend::onednn) {
    const dnnl_status_t status =
        dnnl_sgemm(dnnl_op(op_a), dnnl_op(op_b), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    QKV_ASSERT(status == dnnl_success);
    return;
  }
  cblas_sgemm(CblasRowMajor, cblas_op(op_a), cblas_op(op_b), static_cast<blasint>(M),
              static_cast<blasint>(N), static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda),
              B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

}  // namespace qkv
