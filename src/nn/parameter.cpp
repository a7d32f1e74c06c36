// Zeroing and global-norm clipping of gradients.
#include "qkv/nn/parameter.hpp"

#include "elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace qkv::nn {

void append_parameters(std::vector<parameter>& params, std::vector<parameter> more) {
  for (parameter& p : more) params.push_back(std::move(p));
}

void zero_grads(const std::vector<parameter>& params) {
  for (const parameter& p : params)
    std::fill(p.grad->values().begin(), p.grad->values().end(), 0.0f);
}

double clip_grad_norm(const std::vector<parameter>& params, double max_norm) {
  double sum = 0.0;
  for (const parameter& p : params) sum += detail::sum_of_squares(p.grad->data(), p.grad->numel());
  const double norm = std::sqrt(sum);
  // PyTorch's coefficient max_norm / (norm + 1e-6), applied only when it is below 1.
  const double coefficient = max_norm / (norm + 1e-6);
  if (coefficient < 1.0)
    for (const parameter& p : params) detail::scale(p.grad->data(), p.grad->numel(), coefficient);
  return norm;
}

}  // namespace qkv::nn
