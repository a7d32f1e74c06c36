// A trainable parameter seen by optimisers: its name (the state_dict name), its value and its
// gradient, plus the global-norm gradient clipping that works across all of them.
#pragma once

#include <string>
#include <vector>

#include "qkv/tensor.hpp"

namespace qkv::nn {

struct parameter {
  std::string name;
  tensor* value = nullptr;
  tensor* grad = nullptr;  // same shape as *value
  bool decay = true;       // weight decay applies (not to biases, norms, embeddings' positions)
};

// Moves every parameter of `more` to the end of `params` (a model collecting its layers').
void append_parameters(std::vector<parameter>& params, std::vector<parameter> more);
// Sets every gradient to zero.
void zero_grads(const std::vector<parameter>& params);
// torch.nn.utils.clip_grad_norm_: n = sqrt(sum of every squared gradient entry); when n > max_norm
// every gradient is scaled by max_norm / n. Returns n (before clipping). Summed in float64 in a
// fixed order, so the result does not depend on threads.
double clip_grad_norm(const std::vector<parameter>& params, double max_norm);

}  // namespace qkv::nn
