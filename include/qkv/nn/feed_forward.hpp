// The position-wise feed-forward block of a Transformer layer: FFN(x) = act(x·W1^T + b1)·W2^T + b2
// ("Attention Is All You Need" eq. 2), act = ReLU, GELU (erf form, PyTorch's default) or GELU's
// tanh approximation (GPT-2's `gelu_new`, PyTorch's approximate="tanh").
// state_dict names as in nn.TransformerEncoderLayer: `linear1.*` [F,E], `linear2.*` [E,F].
#pragma once

#include <random>
#include <string>
#include <vector>

#include "qkv/nn/linear.hpp"
#include "qkv/nn/parameter.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

enum class activation { relu, gelu, gelu_tanh };

// "relu" | "gelu" | "gelu_tanh"; throws qkv::error naming `argument` otherwise.
activation parse_activation(const std::string& text, const std::string& argument = "activation");
// relu: max(x, 0); gelu: 0.5·x·(1 + erf(x/sqrt(2))); gelu_tanh: 0.5·x·(1 + tanh(u)) with
// u = sqrt(2/π)·(x + 0.044715·x³) (Hendrycks & Gimpel's approximation), in place; or into a
// new tensor.
void apply_activation(activation act, tensor& x);
tensor activate(activation act, const tensor& x);

// The activation's backward (feed_forward_backward.cpp): given the pre-activation x and dy,
// relu: dy·[x > 0]; gelu: dy·(Φ(x) + x·φ(x)), Φ and φ the standard normal cdf and density;
// gelu_tanh: dy·(0.5·(1 + t) + 0.5·x·(1 − t²)·sqrt(2/π)·(1 + 3·0.044715·x²)), t = tanh(u).
tensor activation_backward(activation act, const tensor& x, const tensor& dy);

// Gradients of the two linear layers' parameters.
struct feed_forward_grads {
  linear_grads linear1, linear2;
};
// The hidden layer before and after the activation, kept by forward for backward.
struct feed_forward_cache {
  tensor hidden, activated;
};

class feed_forward {
 public:
  feed_forward() = default;
  // linear1 [F,E], linear2 [E,F].
  feed_forward(linear linear1, linear linear2, activation act);
  feed_forward(int64_t E, int64_t F, activation act, std::mt19937_64& rng);

  // Takes `<prefix>linear1.*` and `<prefix>linear2.*` (E and F from linear1.weight).
  static feed_forward load(state_dict_reader& reader, const std::string& prefix, activation act);
  void save(state_dict& dict, const std::string& prefix) const;

  // x [..., E] -> [..., E].
  tensor forward(const tensor& x, const std::string& argument = "x") const;

  // forward that also keeps what backward needs (feed_forward_backward.cpp).
  tensor forward(const tensor& x, feed_forward_cache& cache) const;
  // Backward of y = act(x·W1^T + b1)·W2^T + b2: accumulates grads, returns dx.
  tensor backward(const tensor& x, const feed_forward_cache& cache, const tensor& dy,
                  feed_forward_grads& grads) const;
  feed_forward_grads make_grads() const;
  std::vector<parameter> parameters(const std::string& prefix, feed_forward_grads& grads);

  int64_t d_model() const { return linear1_.in_features(); }
  int64_t dim_feedforward() const { return linear1_.out_features(); }
  activation act() const { return act_; }

 private:
  linear linear1_, linear2_;
  activation act_ = activation::relu;
};

}  // namespace qkv::nn
