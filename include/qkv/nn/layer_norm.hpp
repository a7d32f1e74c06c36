// nn.LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) · weight + bias, with the
// biased variance (divide by E). state_dict names: `weight` [E], `bias` [E].
#pragma once

#include <string>
#include <vector>

#include "qkv/nn/parameter.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

// Gradients of a LayerNorm's weight and bias (layer_norm_backward.cpp).
struct layer_norm_grads {
  tensor weight, bias;
};

class layer_norm {
 public:
  layer_norm() = default;
  // weight, bias [E]; eps finite and > 0. Throws qkv::error otherwise.
  layer_norm(tensor weight, tensor bias, float eps = 1e-5f);
  // PyTorch's initialisation: weight 1, bias 0.
  explicit layer_norm(int64_t E, float eps = 1e-5f);

  static layer_norm load(state_dict_reader& reader, const std::string& prefix, int64_t E,
                         float eps);
  void save(state_dict& dict, const std::string& prefix) const;

  // x [..., E] -> [..., E]; mean and variance accumulated in float64.
  tensor forward(const tensor& x, const std::string& argument = "x") const;

  // Backward (layer_norm_backward.cpp): accumulates grads, returns dx; the row statistics are
  // recomputed from x rather than kept by forward.
  tensor backward(const tensor& x, const tensor& dy, layer_norm_grads& grads) const;
  // The same, adding dx into `sum` (x's shape) rather than returning it: a residual stream's
  // gradient, d in = d out + LN'(...), in one pass.
  void backward_add(const tensor& x, const tensor& dy, layer_norm_grads& grads, tensor& sum) const;
  layer_norm_grads make_grads() const;
  // `<prefix>weight` and `<prefix>bias` with their gradients (no weight decay), for an optimiser.
  std::vector<parameter> parameters(const std::string& prefix, layer_norm_grads& grads);

  int64_t size() const { return weight_.numel(); }
  float eps() const { return eps_; }

 private:
  // dx into `dx` (or added to it), grads accumulated.
  void backward_rows(const tensor& x, const tensor& dy, layer_norm_grads& grads, tensor& dx,
                     bool add) const;
  tensor weight_, bias_;
  float eps_ = 1e-5f;
};

}  // namespace qkv::nn
