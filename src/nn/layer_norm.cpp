// LayerNorm (Ba, Kiros, Hinton 2016), PyTorch's form: per row of E values,
// mean = sum(x)/E, var = sum((x - mean)^2)/E, y = (x - mean)/sqrt(var + eps)·weight + bias.
#include "qkv/nn/layer_norm.hpp"

#include <cmath>
#include <sstream>

#include "layer_norm_row.hpp"
#include "parallel_chunks.hpp"
#include "qkv/error.hpp"
#include "vector_math.hpp"

namespace qkv::nn {
namespace {

// y[R,E] from x[R,E]: per row, mean and variance summed in float64, then the affine map.
QKV_VECTOR_CLONES void layer_norm_rows(float* y, const float* x, const float* weight,
                                       const float* bias, int64_t R, int64_t E, float eps) {
  for (int64_t r = 0; r < R; ++r) {
    const float* in = x + r * E;
    float* out = y + r * E;
    // Plain locals, not a structured binding: clang 14 cannot use one in an OpenMP region.
    const detail::row_statistics stats = detail::layer_norm_statistics(in, E, eps);
    const float m = stats.mean, inv_std = stats.inv_std;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) out[e] = (in[e] - m) * inv_std * weight[e] + bias[e];
  }
}

}  // namespace

layer_norm::layer_norm(tensor weight, tensor bias, float eps)
    : weight_(std::move(weight)), bias_(std::move(bias)), eps_(eps) {
  if (weight_.rank() != 1 || weight_.numel() == 0 || bias_.shape() != weight_.shape())
    throw error("layer_norm", "weight and bias must both be [E] with E >= 1, got " +
                                  to_string(weight_.shape()) + " and " + to_string(bias_.shape()));
  if (!std::isfinite(eps) || eps <= 0.0f) {
    std::ostringstream msg;
    msg << "must be finite and > 0, got " << eps;
    throw error("eps", msg.str());
  }
}

layer_norm::layer_norm(int64_t E, float eps) : layer_norm(tensor({E}, 1.0f), tensor({E}), eps) {}

layer_norm layer_norm::load(state_dict_reader& reader, const std::string& prefix, int64_t E,
                            float eps) {
  tensor w = reader.take(prefix + "weight", {E});
  return layer_norm(std::move(w), reader.take(prefix + "bias", {E}), eps);
}

void layer_norm::save(state_dict& dict, const std::string& prefix) const {
  dict[prefix + "weight"] = weight_;
  dict[prefix + "bias"] = bias_;
}

tensor layer_norm::forward(const tensor& x, const std::string& argument) const {
  const int64_t E = size();
  if (x.rank() < 1 || x.size(-1) != E)
    throw error(argument, "expected [..., " + std::to_string(E) + "] (the LayerNorm size), got " +
                              to_string(x.shape()));
  tensor y(x.shape());
  detail::for_each_chunk(x.numel() / E, detail::rows_per_chunk, [&](int64_t, int64_t b, int64_t e) {
    layer_norm_rows(y.data() + b * E, x.data() + b * E, weight_.data(), bias_.data(), e - b, E,
                    eps_);
  });
  return y;
}

}  // namespace qkv::nn
