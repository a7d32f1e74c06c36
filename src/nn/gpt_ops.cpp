// Layer normalisation, GELU and embeddings, forward and backward (equations in gpt_ops.hpp).
#include "gpt_ops.hpp"

#include <cmath>
#include <numbers>

#include "qkv/error.hpp"

namespace qkv::nn::detail {

tensor layer_norm_forward(const tensor& x, const tensor& w, const tensor& b, float eps,
                          layer_norm_cache& cache) {
  const int64_t E = x.size(-1), M = x.numel() / E;
  QKV_ASSERT(w.numel() == E && b.numel() == E);
  tensor y(x.shape());
  cache.mean.resize(static_cast<size_t>(M));
  cache.rstd.resize(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x.data() + m * E;
    double sum = 0.0, sq = 0.0;
    for (int64_t e = 0; e < E; ++e) sum += xr[e];
    const double mu = sum / static_cast<double>(E);
    for (int64_t e = 0; e < E; ++e) sq += (xr[e] - mu) * (xr[e] - mu);
    const double r = 1.0 / std::sqrt(sq / static_cast<double>(E) + eps);
    cache.mean[static_cast<size_t>(m)] = static_cast<float>(mu);
    cache.rstd[static_cast<size_t>(m)] = static_cast<float>(r);
    float* yr = y.data() + m * E;
    for (int64_t e = 0; e < E; ++e) yr[e] = static_cast<float>((xr[e] - mu) * r) * w[e] + b[e];
  }
  return y;
}

tensor layer_norm_backward(const tensor& x, const tensor& dy, const tensor& w,
                           const layer_norm_cache& cache, tensor& dw, tensor& db) {
  const int64_t E = x.size(-1), M = x.numel() / E;
  tensor dx(x.shape());
  std::vector<float> xhat(static_cast<size_t>(E)), g(static_cast<size_t>(E));
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x.data() + m * E;
    const float* dyr = dy.data() + m * E;
    const float mu = cache.mean[static_cast<size_t>(m)], r = cache.rstd[static_cast<size_t>(m)];
    double mean_g = 0.0, mean_gx = 0.0;
    for (int64_t e = 0; e < E; ++e) {
      const auto i = static_cast<size_t>(e);
      xhat[i] = (xr[e] - mu) * r;
      g[i] = dyr[e] * w[e];
      mean_g += g[i];
      mean_gx += g[i] * xhat[i];
      dw[e] += dyr[e] * xhat[i];
      db[e] += dyr[e];
    }
    mean_g /= static_cast<double>(E);
    mean_gx /= static_cast<double>(E);
    float* dxr = dx.data() + m * E;
    for (int64_t e = 0; e < E; ++e) {
      const auto i = static_cast<size_t>(e);
      dxr[e] = static_cast<float>(r * (g[i] - mean_g - xhat[i] * mean_gx));
    }
  }
  return dx;
}

tensor gelu_forward(const tensor& x) {
  tensor y(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i)
    y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * static_cast<float>(std::numbers::sqrt2 / 2)));
  return y;
}

tensor gelu_backward(const tensor& x, const tensor& dy) {
  const float inv_sqrt2 = static_cast<float>(std::numbers::sqrt2 / 2);
  const float inv_sqrt_2pi = static_cast<float>(std::numbers::inv_sqrtpi * std::numbers::sqrt2 / 2);
  tensor dx(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float cdf = 0.5f * (1.0f + std::erf(x[i] * inv_sqrt2));
    const float pdf = inv_sqrt_2pi * std::exp(-0.5f * x[i] * x[i]);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
  return dx;
}

tensor embed(const std::vector<int32_t>& idx, int64_t B, int64_t T, const tensor& wte,
             const tensor& wpe) {
  const int64_t E = wte.size(1);
  tensor x({B, T, E});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* te = wte.data() + idx[static_cast<size_t>(b * T + t)] * E;
      const float* pe = wpe.data() + t * E;
      float* xr = x.data() + (b * T + t) * E;
      for (int64_t e = 0; e < E; ++e) xr[e] = te[e] + pe[e];
    }
  return x;
}

void embed_backward(const std::vector<int32_t>& idx, int64_t B, int64_t T, const tensor& dx,
                    tensor& dwte, tensor& dwpe) {
  const int64_t E = dwte.size(1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* d = dx.data() + (b * T + t) * E;
      float* te = dwte.data() + idx[static_cast<size_t>(b * T + t)] * E;
      float* pe = dwpe.data() + t * E;
      for (int64_t e = 0; e < E; ++e) {
        te[e] += d[e];
        pe[e] += d[e];
      }
    }
}

tensor add(const tensor& a, const tensor& b) {
  QKV_ASSERT(a.numel() == b.numel());
  tensor y(a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) y[i] = a[i] + b[i];
  return y;
}

}  // namespace qkv::nn::detail
