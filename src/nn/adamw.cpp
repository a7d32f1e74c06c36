// AdamW. For each parameter θ with gradient g at step t (lr γ, decay λ):
//   θ ← θ − γλθ;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   θ ← θ − γ · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε).
#include "qkv/nn/adamw.hpp"

#include <cmath>

#include "qkv/error.hpp"

namespace qkv::nn {

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
  const float step_size = static_cast<float>(lr / c1);
  const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(c2));
  for (size_t i = 0; i < params_.size(); ++i) {
    const parameter& p = params_[i];
    const float decay = p.decay ? static_cast<float>(1.0 - lr * config_.weight_decay) : 1.0f;
    float* theta = p.value->data();
    const float* g = p.grad->data();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
    const float eps = static_cast<float>(config_.eps);
    for (int64_t x = 0; x < p.value->numel(); ++x) {
      theta[x] *= decay;
      m[x] = fb1 * m[x] + (1.0f - fb1) * g[x];
      v[x] = fb2 * v[x] + (1.0f - fb2) * g[x] * g[x];
      theta[x] -= step_size * m[x] / (std::sqrt(v[x]) * inv_sqrt_c2 + eps);
    }
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
