// LayerNorm (Ba, Kiros, Hinton 2016), PyTorch's form: per row of E values,
// mean = sum(x)/E, var = sum((x - mean)^2)/E, y = (x - mean)/sqrt(var + eps)·weight + bias.
#include "qkv/nn/layer_norm.hpp"

#include <cmath>
#include <sstream>

#include "qkv/error.hpp"

namespace qkv::nn {

layer_norm::layer_norm(tensor weight, tensor bias, float eps)
    : weight_(std::move(weight)), bias_(std::move(bias)), eps_(eps) {
  if (weight_.rank() != 1 || weight_.numel() == 0 || bias_.shape() != weight_.shape())
    throw error("layer_norm: weight and bias must both be [E] with E >= 1, got " +
                to_string(weight_.shape()) + " and " + to_string(bias_.shape()));
  if (!std::isfinite(eps) || eps <= 0.0f) {
    std::ostringstream msg;
    msg << "eps: must be finite and > 0, got " << eps;
    throw error(msg.str());
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
    throw error(argument + ": expected [..., " + std::to_string(E) +
                "] (the LayerNorm size), got " + to_string(x.shape()));
  tensor y(x.shape());
  for (int64_t r = 0; r < x.numel() / E; ++r) {
    const float* in = x.data() + r * E;
    float* out = y.data() + r * E;
    double mean = 0.0, var = 0.0;
    for (int64_t e = 0; e < E; ++e) mean += in[e];
    mean /= static_cast<double>(E);
    for (int64_t e = 0; e < E; ++e) var += (in[e] - mean) * (in[e] - mean);
    var /= static_cast<double>(E);
    const double inv_std = 1.0 / std::sqrt(var + eps_);
    for (int64_t e = 0; e < E; ++e)
      out[e] = static_cast<float>((in[e] - mean) * inv_std * weight_[e] + bias_[e]);
  }
  return y;
}

}  // namespace qkv::nn
