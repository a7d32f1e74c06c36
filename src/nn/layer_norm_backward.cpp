// Backward of LayerNorm over rows of E. Forward: μ = mean(x), r = 1/√(var(x) + eps),
// x̂ = (x − μ)·r, y = x̂ ⊙ w + b. With g = dy ⊙ w:
//   ∂L/∂w = Σ_rows dy ⊙ x̂,  ∂L/∂b = Σ_rows dy,  ∂L/∂x = r·(g − mean(g) − x̂·mean(g ⊙ x̂)),
// the last because μ and r depend on every entry of the row.
#include <cmath>

#include "qkv/error.hpp"
#include "qkv/nn/layer_norm.hpp"

namespace qkv::nn {

tensor layer_norm::backward(const tensor& x, const tensor& dy, layer_norm_grads& grads) const {
  const int64_t E = size();
  if (x.rank() < 1 || x.size(-1) != E || dy.shape() != x.shape())
    throw error("layer_norm backward: expected x and dy of the same shape [..., " +
                std::to_string(E) + "], got x " + to_string(x.shape()) + ", dy " +
                to_string(dy.shape()));
  tensor dx(x.shape());
  std::vector<double> xhat(static_cast<size_t>(E)), g(static_cast<size_t>(E));
  for (int64_t row = 0; row < x.numel() / E; ++row) {
    const float* in = x.data() + row * E;
    const float* d = dy.data() + row * E;
    double mean = 0.0, var = 0.0;
    for (int64_t e = 0; e < E; ++e) mean += in[e];
    mean /= static_cast<double>(E);
    for (int64_t e = 0; e < E; ++e) var += (in[e] - mean) * (in[e] - mean);
    const double r = 1.0 / std::sqrt(var / static_cast<double>(E) + eps_);
    double mean_g = 0.0, mean_gx = 0.0;
    for (int64_t e = 0; e < E; ++e) {
      const auto i = static_cast<size_t>(e);
      xhat[i] = (in[e] - mean) * r;
      g[i] = static_cast<double>(d[e]) * weight_[e];
      mean_g += g[i];
      mean_gx += g[i] * xhat[i];
      grads.weight[e] += static_cast<float>(d[e] * xhat[i]);
      grads.bias[e] += d[e];
    }
    mean_g /= static_cast<double>(E);
    mean_gx /= static_cast<double>(E);
    float* out = dx.data() + row * E;
    for (int64_t e = 0; e < E; ++e) {
      const auto i = static_cast<size_t>(e);
      out[e] = static_cast<float>(r * (g[i] - mean_g - xhat[i] * mean_gx));
    }
  }
  return dx;
}

layer_norm_grads layer_norm::make_grads() const {
  return {tensor(weight_.shape()), tensor(bias_.shape())};
}

std::vector<parameter> layer_norm::parameters(const std::string& prefix, layer_norm_grads& grads) {
  return {{prefix + "weight", &weight_, &grads.weight, false},
          {prefix + "bias", &bias_, &grads.bias, false}};
}

}  // namespace qkv::nn
