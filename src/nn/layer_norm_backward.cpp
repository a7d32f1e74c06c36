// Backward of LayerNorm over rows of E. Forward: μ = mean(x), r = 1/√(var(x) + eps),
// x̂ = (x − μ)·r, y = x̂ ⊙ w + b. With g = dy ⊙ w:
//   ∂L/∂w = Σ_rows dy ⊙ x̂,  ∂L/∂b = Σ_rows dy,  ∂L/∂x = r·(g − mean(g) − x̂·mean(g ⊙ x̂)),
// the last because μ and r depend on every entry of the row.
#include <cmath>
#include <vector>

#include "layer_norm_row.hpp"
#include "parallel_chunks.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/layer_norm.hpp"
#include "vector_math.hpp"

namespace qkv::nn {
namespace {

// dx[R,E] from x, dy [R,E] (written, or added to dx's values when `add`); this chunk's
// Σ_rows dy ⊙ x̂ and Σ_rows dy go to dw, db [E] (overwritten). Row statistics summed in float64.
QKV_VECTOR_CLONES void layer_norm_backward_rows(float* dx, float* dw, float* db, const float* x,
                                                const float* dy, const float* weight, int64_t R,
                                                int64_t E, float eps, bool add) {
  for (int64_t e = 0; e < E; ++e) dw[e] = db[e] = 0.0f;
  for (int64_t row = 0; row < R; ++row) {
    const float* in = x + row * E;
    const float* d = dy + row * E;
    float* out = dx + row * E;
    // Plain locals, not a structured binding: clang 14 cannot use one in an OpenMP region.
    const detail::row_statistics stats = detail::layer_norm_statistics(in, E, eps);
    const float m = stats.mean, r = stats.inv_std;
    // mean(g) and mean(g ⊙ x̂) with g = dy ⊙ w, x̂ = (x − μ)·r.
    double sum_g = 0.0, sum_gx = 0.0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int64_t e = 0; e < E; ++e) {
      const float xhat = (in[e] - m) * r, g = d[e] * weight[e];
      sum_g += g;
      sum_gx += g * xhat;
      dw[e] += d[e] * xhat;
      db[e] += d[e];
    }
    const auto mean_g = static_cast<float>(sum_g / static_cast<double>(E));
    const auto mean_gx = static_cast<float>(sum_gx / static_cast<double>(E));
    const auto dx_e = [&](int64_t e) {
      return r * (d[e] * weight[e] - mean_g - (in[e] - m) * r * mean_gx);
    };
    if (add) {
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) out[e] += dx_e(e);
    } else {
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) out[e] = dx_e(e);
    }
  }
}

}  // namespace

tensor layer_norm::backward(const tensor& x, const tensor& dy, layer_norm_grads& grads) const {
  tensor dx(x.shape());
  backward_rows(x, dy, grads, dx, false);
  return dx;
}

void layer_norm::backward_add(const tensor& x, const tensor& dy, layer_norm_grads& grads,
                              tensor& sum) const {
  QKV_ASSERT(sum.shape() == x.shape());
  backward_rows(x, dy, grads, sum, true);
}

void layer_norm::backward_rows(const tensor& x, const tensor& dy, layer_norm_grads& grads,
                               tensor& dx, bool add) const {
  const int64_t E = size();
  if (x.rank() < 1 || x.size(-1) != E || dy.shape() != x.shape())
    throw error("layer_norm backward: expected x and dy of the same shape [..., " +
                std::to_string(E) + "], got x " + to_string(x.shape()) + ", dy " +
                to_string(dy.shape()));
  const int64_t rows = x.numel() / E, chunks = detail::chunk_count(rows, detail::rows_per_chunk);
  // Per-chunk partial sums of ∂L/∂w and ∂L/∂b, added in chunk order: the same bits on any
  // number of threads.
  std::vector<float> dw(static_cast<size_t>(chunks * E)), db(dw.size());
  detail::for_each_chunk(rows, detail::rows_per_chunk, [&](int64_t c, int64_t b, int64_t e) {
    layer_norm_backward_rows(dx.data() + b * E, dw.data() + c * E, db.data() + c * E,
                             x.data() + b * E, dy.data() + b * E, weight_.data(), e - b, E, eps_,
                             add);
  });
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t e = 0; e < E; ++e) {
      grads.weight[e] += dw[static_cast<size_t>(c * E + e)];
      grads.bias[e] += db[static_cast<size_t>(c * E + e)];
    }
}

layer_norm_grads layer_norm::make_grads() const {
  return {tensor(weight_.shape()), tensor(bias_.shape())};
}

std::vector<parameter> layer_norm::parameters(const std::string& prefix, layer_norm_grads& grads) {
  return {{prefix + "weight", &weight_, &grads.weight, false},
          {prefix + "bias", &bias_, &grads.bias, false}};
}

}  // namespace qkv::nn
