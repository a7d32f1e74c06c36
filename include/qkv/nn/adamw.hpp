// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", algorithm 2), as
// torch.optim.AdamW computes it: decay first, then the bias-corrected Adam step.
#pragma once

#include <cstdint>
#include <vector>

#include "qkv/nn/parameter.hpp"
#include "qkv/nn/state_dict.hpp"

namespace qkv::nn {

struct adamw_config {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.01;
};

class adamw {
 public:
  // Moments start at zero, one pair per parameter, in the order given.
  adamw(const std::vector<parameter>& params, adamw_config config = {});

  // One step at learning rate lr, using every parameter's current gradient.
  void step(double lr);

  int64_t steps() const { return t_; }
  // The moments as `<name>.exp_avg` / `<name>.exp_avg_sq` and the step count as "step" (a [1]
  // tensor: exact while below 2^24 steps), for checkpoints.
  void save(state_dict& dict) const;
  // Restores what save wrote; throws qkv::error naming a missing or mis-shaped tensor.
  void load(state_dict_reader& reader);

 private:
  std::vector<parameter> params_;
  adamw_config config_;
  std::vector<tensor> m_, v_;  // first and second moments
  int64_t t_ = 0;
};

}  // namespace qkv::nn
