// Backward of the feed-forward block y = act(h)·W2^T + b2 with h = x·W1^T + b1:
//   d act(h) = linear2.backward(act(h), dy),  dh = act'(h) ⊙ d act(h),  dx = linear1.backward(x,
//   dh).
// GELU'(h) = Φ(h) + h·φ(h) (erf form); ReLU'(h) = [h > 0]; the tanh form's in gelu_tanh_backward.
#include <cmath>
#include <numbers>

#include "parallel_chunks.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/feed_forward.hpp"
#include "vector_math.hpp"

namespace qkv::nn {
namespace {

// d ← d·GELU'(x) = d·(Φ(x) + x·φ(x)), Φ(x) = (1 + erf(x/√2))/2, φ(x) = exp(−x²/2)/√(2π).
QKV_VECTOR_CLONES void gelu_backward_values(float* d, const float* x, int64_t n) {
  const auto inv_sqrt_2pi = static_cast<float>(std::numbers::inv_sqrtpi * M_SQRT1_2);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float cdf = 0.5f * (1.0f + detail::erf_lane(x[i] * static_cast<float>(M_SQRT1_2)));
    const float pdf = detail::exp_lane(-0.5f * x[i] * x[i]) * inv_sqrt_2pi;
    d[i] *= cdf + x[i] * pdf;
  }
}

// d ← d·(0.5·(1 + t) + 0.5·x·sech²(u)·du/dx), t = tanh(u), u = k·(x + c·x³), du/dx = k·(1 + 3c·x²).
QKV_VECTOR_CLONES void gelu_tanh_backward_values(float* d, const float* x, int64_t n) {
  using detail::gelu_tanh_c, detail::gelu_tanh_k;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float x2 = x[i] * x[i];
    const detail::tanh_sech2 t = detail::tanh_lane(gelu_tanh_k * (x[i] + gelu_tanh_c * x2 * x[i]));
    const float du = gelu_tanh_k * (1.0f + 3.0f * gelu_tanh_c * x2);
    d[i] *= 0.5f * (1.0f + t.tanh) + 0.5f * x[i] * t.sech2 * du;
  }
}

// dy ← act'(x) ⊙ dy.
void activation_backward_in_place(activation act, const tensor& x, tensor& dy) {
  if (act == activation::relu) {
    for (int64_t n = 0; n < x.numel(); ++n)
      if (!(x[n] > 0.0f)) dy[n] = 0.0f;
    return;
  }
  detail::for_each_chunk(x.numel(), detail::elementwise_chunk, [&](int64_t, int64_t b, int64_t e) {
    if (act == activation::gelu)
      gelu_backward_values(dy.data() + b, x.data() + b, e - b);
    else
      gelu_tanh_backward_values(dy.data() + b, x.data() + b, e - b);
  });
}

}  // namespace

tensor activation_backward(activation act, const tensor& x, const tensor& dy) {
  QKV_ASSERT(x.shape() == dy.shape());
  tensor dx = dy;
  activation_backward_in_place(act, x, dx);
  return dx;
}

tensor feed_forward::forward(const tensor& x, feed_forward_cache& cache) const {
  cache.hidden = linear1_.forward(x);
  cache.activated = activate(act_, cache.hidden);
  return linear2_.forward(cache.activated, "hidden");
}

tensor feed_forward::backward(const tensor& x, const feed_forward_cache& cache, const tensor& dy,
                              feed_forward_grads& grads) const {
  tensor dh = linear2_.backward(cache.activated, dy, grads.linear2);
  activation_backward_in_place(act_, cache.hidden, dh);
  return linear1_.backward(x, dh, grads.linear1);
}

feed_forward_grads feed_forward::make_grads() const {
  return {linear1_.make_grads(), linear2_.make_grads()};
}

std::vector<parameter> feed_forward::parameters(const std::string& prefix,
                                                feed_forward_grads& grads) {
  std::vector<parameter> params = linear1_.parameters(prefix + "linear1.", grads.linear1);
  for (parameter& p : linear2_.parameters(prefix + "linear2.", grads.linear2))
    params.push_back(std::move(p));
  return params;
}

}  // namespace qkv::nn
