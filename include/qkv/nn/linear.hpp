// nn.Linear: y = x·W^T + b over the last axis, on the library's sgemm (qkv/gemm.hpp). W [out,in], b
// [out]. state_dict names: `weight`, `bias` (absent for a layer without bias).
#pragma once

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "qkv/nn/parameter.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

// Gradients of a linear layer's parameters (linear_backward.cpp), shaped like them.
struct linear_grads {
  tensor weight;
  std::optional<tensor> bias;
};

class linear {
 public:
  linear() = default;
  // weight [out,in]; bias [out] or none. Throws qkv::error on mismatched shapes.
  explicit linear(tensor weight, std::optional<tensor> bias = std::nullopt);
  // PyTorch's default init: W, b ~ U(-1/sqrt(in), 1/sqrt(in)).
  linear(int64_t in_features, int64_t out_features, bool bias, std::mt19937_64& rng);

  // Takes `<prefix>weight` [out,in] and, when present, `<prefix>bias` [out].
  static linear load(state_dict_reader& reader, const std::string& prefix, int64_t out_features,
                     int64_t in_features);
  void save(state_dict& dict, const std::string& prefix) const;

  // x [..., in] -> y [..., out]. `argument` names x in error messages.
  tensor forward(const tensor& x, const std::string& argument = "x") const;

  // Backward of y = x·W^T + b (linear_backward.cpp): accumulates grads.weight += dy^T·x and
  // grads.bias += the sum of dy's rows; returns dx = dy·W. x [..., in], dy [..., out].
  tensor backward(const tensor& x, const tensor& dy, linear_grads& grads) const;
  // backward's two halves, for M rows of x [M,in] and dy [M,out] whose rows are ldy floats
  // apart (dy may be a column block of a wider gradient): grads.weight += dy^T·x and
  // grads.bias += the sum of dy's rows; and dx = dy·W, written to dx [M,in].
  void accumulate_grads(const float* x, const float* dy, int64_t M, int64_t ldy,
                        linear_grads& grads) const;
  void input_grad_into(const float* dy, int64_t M, int64_t ldy, float* dx) const;
  // Zero gradients shaped like the parameters.
  linear_grads make_grads() const;
  // `<prefix>weight` and `<prefix>bias` paired with their gradients, for an optimiser.
  std::vector<parameter> parameters(const std::string& prefix, linear_grads& grads);

  int64_t in_features() const { return weight_.size(1); }
  int64_t out_features() const { return weight_.size(0); }
  const tensor& weight() const { return weight_; }
  const std::optional<tensor>& bias() const { return bias_; }

 private:
  tensor weight_;
  std::optional<tensor> bias_;
};

}  // namespace qkv::nn
