// Backward of the feed-forward block y = act(h)·W2^T + b2 with h = x·W1^T + b1:
//   d act(h) = linear2.backward(act(h), dy),  dh = act'(h) ⊙ d act(h),  dx = linear1.backward(x,
//   dh).
// GELU'(h) = Φ(h) + h·φ(h) (erf form); ReLU'(h) = [h > 0].
#include <cmath>
#include <numbers>

#include "qkv/nn/feed_forward.hpp"

namespace qkv::nn {

tensor activation_backward(activation act, const tensor& x, const tensor& dy) {
  tensor dx(x.shape());
  for (int64_t n = 0; n < x.numel(); ++n) {
    const double v = x[n];
    if (act == activation::relu) {
      dx[n] = v > 0.0 ? dy[n] : 0.0f;
    } else {
      const double cdf = 0.5 * (1.0 + std::erf(v * M_SQRT1_2));
      const double pdf = std::exp(-0.5 * v * v) * std::numbers::inv_sqrtpi * M_SQRT1_2;
      dx[n] = static_cast<float>(dy[n] * (cdf + v * pdf));
    }
  }
  return dx;
}

tensor feed_forward::forward(const tensor& x, feed_forward_cache& cache) const {
  cache.hidden = linear1_.forward(x);
  cache.activated = cache.hidden;
  apply_activation(act_, cache.activated);
  return linear2_.forward(cache.activated, "hidden");
}

tensor feed_forward::backward(const tensor& x, const feed_forward_cache& cache, const tensor& dy,
                              feed_forward_grads& grads) const {
  const tensor da = linear2_.backward(cache.activated, dy, grads.linear2);
  return linear1_.backward(x, activation_backward(act_, cache.hidden, da), grads.linear1);
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
