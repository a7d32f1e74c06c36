// The feed-forward block: two nn.Linear around the activation.
#include "qkv/nn/feed_forward.hpp"

#include <cmath>

#include "parallel_chunks.hpp"
#include "qkv/error.hpp"
#include "vector_math.hpp"

namespace qkv::nn {
namespace {

// y = GELU(x) = x·Φ(x), Φ the standard normal CDF = (1 + erf(x/√2))/2 (Hendrycks & Gimpel); y
// may be x.
QKV_VECTOR_CLONES void gelu_values(float* y, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    y[i] = 0.5f * x[i] * (1.0f + detail::erf_lane(x[i] * static_cast<float>(M_SQRT1_2)));
}

// y = GELU's tanh form 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))); y may be x.
QKV_VECTOR_CLONES void gelu_tanh_values(float* y, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float u = detail::gelu_tanh_k * (x[i] + detail::gelu_tanh_c * x[i] * x[i] * x[i]);
    y[i] = 0.5f * x[i] * (1.0f + detail::tanh_lane(u).tanh);
  }
}

// y = act(x) for n floats (y may be x), in chunks on the threads.
void activation_values(activation act, float* y, const float* x, int64_t n) {
  if (act == activation::relu) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return;
  }
  detail::for_each_chunk(n, detail::elementwise_chunk, [&](int64_t, int64_t b, int64_t e) {
    if (act == activation::gelu)
      gelu_values(y + b, x + b, e - b);
    else
      gelu_tanh_values(y + b, x + b, e - b);
  });
}

}  // namespace

activation parse_activation(const std::string& text, const std::string& argument) {
  if (text == "relu") return activation::relu;
  if (text == "gelu") return activation::gelu;
  if (text == "gelu_tanh") return activation::gelu_tanh;
  throw error(argument, "expected relu, gelu or gelu_tanh, got '" + text + "'");
}

void apply_activation(activation act, tensor& x) {
  activation_values(act, x.data(), x.data(), x.numel());
}

tensor activate(activation act, const tensor& x) {
  tensor y(x.shape());
  activation_values(act, y.data(), x.data(), x.numel());
  return y;
}

feed_forward::feed_forward(linear linear1, linear linear2, activation act)
    : linear1_(std::move(linear1)), linear2_(std::move(linear2)), act_(act) {
  if (linear2_.in_features() != linear1_.out_features() ||
      linear2_.out_features() != linear1_.in_features())
    throw error("feed_forward", "linear1 must be [F,E] and linear2 [E,F], got " +
                                    to_string(linear1_.weight().shape()) + " and " +
                                    to_string(linear2_.weight().shape()));
}

feed_forward::feed_forward(int64_t E, int64_t F, activation act, std::mt19937_64& rng)
    : feed_forward(linear(E, F, true, rng), linear(F, E, true, rng), act) {}

feed_forward feed_forward::load(state_dict_reader& reader, const std::string& prefix,
                                activation act) {
  const shape_t s = reader.shape_of(prefix + "linear1.weight", 2);
  const int64_t F = s[0], E = s[1];
  linear l1 = linear::load(reader, prefix + "linear1.", F, E);
  return feed_forward(std::move(l1), linear::load(reader, prefix + "linear2.", E, F), act);
}

void feed_forward::save(state_dict& dict, const std::string& prefix) const {
  linear1_.save(dict, prefix + "linear1.");
  linear2_.save(dict, prefix + "linear2.");
}

tensor feed_forward::forward(const tensor& x, const std::string& argument) const {
  tensor hidden = linear1_.forward(x, argument);
  apply_activation(act_, hidden);
  return linear2_.forward(hidden, "hidden");
}

}  // namespace qkv::nn
