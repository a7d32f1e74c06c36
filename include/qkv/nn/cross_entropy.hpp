// Cross-entropy of logits against class indices (torch.nn.functional.cross_entropy, mean
// reduction), with its gradient, computed in one pass because training always needs both.
#pragma once

#include <cstdint>
#include <vector>

#include "qkv/tensor.hpp"

namespace qkv::nn {

struct cross_entropy_result {
  double loss = 0;      // mean over rows of −log softmax(logits[m])[target[m]], in nats
  tensor dlogits;       // ∂loss/∂logits [M,V] = (softmax(logits[m]) − onehot(target[m])) / M
  int64_t correct = 0;  // rows whose largest logit is the target's (ties: the first index)
};

// logits [M,V], targets M class indices in [0, V). Throws qkv::error naming the bad argument.
cross_entropy_result cross_entropy(const tensor& logits, const std::vector<int32_t>& targets);

}  // namespace qkv::nn
