// AdamW. For each parameter θ with gradient g at step t (lr γ, decay λ):
//   θ ← θ − γλθ;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   θ ← θ − γ · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε).
#include "qkv/nn/adamw.hpp"

#include <cmath>

#include "parallel_chunks.hpp"
#include "qkv/error.hpp"
#include "vector_math.hpp"

namespace qkv::nn {
namespace {

struct adamw_constants {
  float step_size;    // γ/(1−β1^t)
  float inv_sqrt_c2;  // 1/√(1−β2^t)
  float beta1, beta2, eps;
  float decay;  // 1 − γλ, or 1 without weight decay
};

// θ, m, v [n] updated in place from the gradient g [n] (the equations above), vectorised: each
// lane computes what the scalar loop would, so the bits do not depend on the CPU.
QKV_VECTOR_CLONES void adamw_update(float* theta, float* m, float* v, const float* g, int64_t n,
                                    const adamw_constants k) {
#pragma omp simd
  for (int64_t x = 0; x < n; ++x) {
    theta[x] *= k.decay;
    m[x] = k.beta1 * m[x] + (1.0f - k.beta1) * g[x];
    v[x] = k.beta2 * v[x] + (1.0f - k.beta2) * g[x] * g[x];
    theta[x] -= k.step_size * m[x] / (std::sqrt(v[x]) * k.inv_sqrt_c2 + k.eps);
  }
}

}  // namespace

adamw::adamw(const std::vector<parameter>& params, adamw_config config)
    : params_(params), config_(config) {
  for (const parameter& p : params_) {
    m_.emplace_back(p.value->shape());
    v_.emplace_back(p.value->shape());
  }
}

void adamw::step(double lr) {
  ++t_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  const double c1 = 1.0 - std::pow(b1, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(b2, static_cast<double>(t_));
  const adamw_constants k{.step_size = static_cast<float>(lr / c1),
                          .inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(c2)),
                          .beta1 = static_cast<float>(b1),
                          .beta2 = static_cast<float>(b2),
                          .eps = static_cast<float>(config_.eps),
                          .decay = 1.0f};
  for (size_t i = 0; i < params_.size(); ++i) {
    const parameter& p = params_[i];
    adamw_constants ki = k;
    if (p.decay) ki.decay = static_cast<float>(1.0 - lr * config_.weight_decay);
    detail::for_each_chunk(p.value->numel(), detail::elementwise_chunk,
                           [&](int64_t, int64_t b, int64_t e) {
                             adamw_update(p.value->data() + b, m_[i].data() + b, v_[i].data() + b,
                                          p.grad->data() + b, e - b, ki);
                           });
  }
}

void adamw::save(state_dict& dict) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    dict[params_[i].name + ".exp_avg"] = m_[i];
    dict[params_[i].name + ".exp_avg_sq"] = v_[i];
  }
  dict["step"] = tensor({1}, static_cast<float>(t_));
}

void adamw::load(state_dict_reader& reader) {
  for (size_t i = 0; i < params_.size(); ++i) {
    m_[i] = reader.take(params_[i].name + ".exp_avg", params_[i].value->shape());
    v_[i] = reader.take(params_[i].name + ".exp_avg_sq", params_[i].value->shape());
  }
  t_ = static_cast<int64_t>(reader.take("step", {1})[0]);
}

}  // namespace qkv::nn
