// qkv::sgemm on every backend against a float64 product (every transpose, awkward sizes, row
// strides wider than the rows, alpha and beta), and bit-for-bit repeatable at a fixed thread count.
#include "qkv/gemm.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "support/printers.hpp"

namespace qkv {
namespace {

struct gemm_case {
  gemm_op op_a, op_b;
  int64_t M, N, K;
  float alpha, beta;
};

std::vector<float> random_matrix(int64_t count, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(count));
  for (float& v : x) v = normal(rng);
  return x;
}

// op(X)[r,c] for X stored row-major with row stride ld.
float at(const std::vector<float>& X, gemm_op op, int64_t ld, int64_t r, int64_t c) {
  return op == gemm_op::none ? X[r * ld + c] : X[c * ld + r];
}

const std::vector<gemm_backend> backends = {gemm_backend::openblas, gemm_backend::onednn};

class SgemmBackend : public ::testing::TestWithParam<gemm_backend> {};

TEST_P(SgemmBackend, MatchesFloat64OnAwkwardShapes) {
  const gemm_backend backend = GetParam();
  std::mt19937_64 rng(7);
  const std::vector<gemm_case> cases = {
      {gemm_op::none, gemm_op::none, 1, 1, 1, 1.0f, 0.0f},
      {gemm_op::none, gemm_op::transpose, 3, 59, 97, 1.0f, 1.0f},
      {gemm_op::transpose, gemm_op::none, 97, 3, 59, 0.5f, 0.0f},
      {gemm_op::transpose, gemm_op::transpose, 59, 97, 3, 1.0f, -2.0f},
      {gemm_op::none, gemm_op::transpose, 333, 517, 259, 0.125f, 1.0f},
      {gemm_op::none, gemm_op::none, 1025, 7, 64, 1.0f, 0.0f},
  };
  for (const gemm_case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << to_string(backend) << " M=" << c.M << " N=" << c.N << " K=" << c.K
                 << " op_a=" << int(c.op_a) << " op_b=" << int(c.op_b) << " beta=" << c.beta);
    // Stored shapes, each row padded by 5 floats so that lda, ldb, ldc exceed the row length.
    const int64_t a_rows = c.op_a == gemm_op::none ? c.M : c.K, a_cols = c.M + c.K - a_rows;
    const int64_t b_rows = c.op_b == gemm_op::none ? c.K : c.N, b_cols = c.K + c.N - b_rows;
    const int64_t lda = a_cols + 5, ldb = b_cols + 5, ldc = c.N + 5;
    const std::vector<float> A = random_matrix(a_rows * lda, rng),
                             B = random_matrix(b_rows * ldb, rng);
    std::vector<float> C = random_matrix(c.M * ldc, rng);
    const std::vector<float> C0 = C;
    sgemm(c.op_a, c.op_b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(),
          ldc, backend);
    double worst = 0;  // |error| over the fp32 bound of a K-term dot product
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double exact = 0, magnitude = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double term = double(at(A, c.op_a, lda, i, k)) * at(B, c.op_b, ldb, k, j);
          exact += term, magnitude += std::fabs(term);
        }
        const double c0 = C0[i * ldc + j];
        exact = c.alpha * exact + c.beta * c0;
        // gamma_{K+2}·(|alpha|·sum|a·b| + |beta·c0|), the classical bound for fp32 dot products.
        const double bound = (c.K + 2) * std::ldexp(1.0, -24) *
                             (std::fabs(c.alpha) * magnitude + std::fabs(c.beta * c0));
        worst = std::max(worst, std::fabs(C[i * ldc + j] - exact) / std::max(bound, 1e-30));
      }
    EXPECT_LE(worst, 1.0);
    for (int64_t i = 0; i < c.M; ++i)  // the padding between rows stays untouched
      for (int64_t j = c.N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], C0[i * ldc + j]);
  }
}

TEST_P(SgemmBackend, BitForBitAtAFixedThreadCount) {
  const gemm_backend backend = GetParam();
  std::mt19937_64 rng(11);
  // The shapes of a training step's Linear forward and its two backward products.
  const int64_t M = 2048, N = 512, K = 128;
  const std::vector<float> X = random_matrix(M * K, rng), W = random_matrix(N * K, rng);
  const std::vector<float> dY = random_matrix(M * N, rng);
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    const auto run = [&] {
      std::vector<float> Y(M * N), dX(M * K), dW(N * K, 0.5f);
      sgemm(gemm_op::none, gemm_op::transpose, M, N, K, 1.0f, X.data(), K, W.data(), K, 0.0f,
            Y.data(), N, backend);
      sgemm(gemm_op::none, gemm_op::none, M, K, N, 1.0f, dY.data(), N, W.data(), K, 0.0f, dX.data(),
            K, backend);
      sgemm(gemm_op::transpose, gemm_op::none, N, K, M, 1.0f, dY.data(), N, X.data(), K, 1.0f,
            dW.data(), K, backend);
      Y.insert(Y.end(), dX.begin(), dX.end());
      Y.insert(Y.end(), dW.begin(), dW.end());
      return Y;
    };
    const std::vector<float> first = run();
    for (int repeat = 0; repeat < 3; ++repeat)
      EXPECT_EQ(std::memcmp(first.data(), run().data(), first.size() * sizeof(float)), 0)
          << to_string(backend) << " with " << threads << " threads, repeat " << repeat;
  }
  omp_set_num_threads(saved);
}

INSTANTIATE_TEST_SUITE_P(Backends, SgemmBackend, ::testing::ValuesIn(backends),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(Sgemm, DescriptionNamesTheLibraryAndKernel) {
  EXPECT_EQ(gemm_description(gemm_backend::openblas).rfind("OpenBLAS ", 0), 0u)
      << gemm_description(gemm_backend::openblas);
  EXPECT_NE(gemm_description(gemm_backend::openblas).find(", core "), std::string::npos);
  EXPECT_EQ(gemm_description(gemm_backend::onednn).rfind("oneDNN ", 0), 0u)
      << gemm_description(gemm_backend::onednn);
  EXPECT_NE(resolve_gemm_backend(), gemm_backend::automatic);
}

}  // namespace
}  // namespace qkv
