// The sgemm roof and the memory read-loop roof.
#include "roofs.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "composition.hpp"
#include "qkv/gemm.hpp"

namespace qkv::bench {

int64_t sgemm_side(double flops) {
  const double n = std::cbrt(flops / 2.0);
  return std::clamp<int64_t>(64 * std::llround(n / 64.0), 1024, 4096);
}

double time_sgemm(int64_t n, int threads, const timing_plan& plan) {
  const size_t count = static_cast<size_t>(n * n);
  std::vector<float> a(count, 0.5f), b(count, 0.25f), c(count);
  set_blas_threads(threads);
  return median_ms(
      [&] {
        sgemm(gemm_op::none, gemm_op::none, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(),
              n);
      },
      plan);
}

double read_loop_bytes_per_s(int threads, const timing_plan& plan) {
  const int64_t count = (int64_t{128} << 20) / static_cast<int64_t>(sizeof(float));
  constexpr int64_t lanes = 32;  // independent partial sums: the loop waits on memory, not on adds
  std::vector<float> buffer(static_cast<size_t>(count), 1.0f);
  const float* x = buffer.data();
  volatile float sink = 0.0f;  // keeps the sum alive
  const double ms = median_ms(
      [&] {
        float sum = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        {
          float partial[lanes] = {};
#pragma omp for schedule(static)
          for (int64_t i = 0; i < count; i += lanes)
            for (int64_t k = 0; k < lanes; ++k) partial[k] += x[i + k];
          for (const float part : partial) sum += part;
        }
        sink = sum;
      },
      plan);
  (void)sink;
  return static_cast<double>(count * sizeof(float)) / (ms * 1e-3);
}

}  // namespace qkv::bench
