// The statistics of one LayerNorm row, shared by the forward and the backward (which recomputes
// them rather than keeping them). Private to src/nn.
#pragma once

#include <cmath>
#include <cstdint>

namespace qkv::nn::detail {

struct row_statistics {
  float mean, inv_std;  // μ and r = 1/√(var + eps)
};

// μ = Σx/E and var = Σ(x − μ)²/E (biased) of x [E], summed in float64 (two passes).
inline row_statistics layer_norm_statistics(const float* x, int64_t E, float eps) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t e = 0; e < E; ++e) sum += x[e];
  const double mean = sum / static_cast<double>(E);
  double squares = 0.0;
#pragma omp simd reduction(+ : squares)
  for (int64_t e = 0; e < E; ++e) squares += (x[e] - mean) * (x[e] - mean);
  return {static_cast<float>(mean),
          static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(E) + eps))};
}

}  // namespace qkv::nn::detail
