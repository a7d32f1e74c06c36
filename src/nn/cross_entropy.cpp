// Cross-entropy. Per row with logits z and target t: loss = logsumexp(z) − z_t (max-subtracted,
// so large logits do not overflow), and ∂loss/∂z_j = softmax(z)_j − [j = t], divided by M for the
// mean.
#include "qkv/nn/cross_entropy.hpp"

#include <cmath>

#include "qkv/error.hpp"

namespace qkv::nn {

cross_entropy_result cross_entropy(const tensor& logits, const std::vector<int32_t>& targets) {
  if (logits.rank() != 2 || logits.size(0) == 0)
    throw error("logits: expected [M,V] with M >= 1, got " + to_string(logits.shape()));
  const int64_t M = logits.size(0), V = logits.size(1);
  if (static_cast<int64_t>(targets.size()) != M)
    throw error("targets: expected " + std::to_string(M) + " indices (logits " +
                to_string(logits.shape()) + "), got " + std::to_string(targets.size()));
  cross_entropy_result r;
  r.dlogits = tensor(logits.shape());
  double total = 0.0;
  for (int64_t m = 0; m < M; ++m) {
    const int32_t t = targets[static_cast<size_t>(m)];
    if (t < 0 || t >= V)
      throw error("targets: index " + std::to_string(t) + " at row " + std::to_string(m) +
                  " outside [0, " + std::to_string(V) + ")");
    const float* z = logits.data() + m * V;
    float* dz = r.dlogits.data() + m * V;
    int64_t argmax = 0;
    for (int64_t j = 1; j < V; ++j)
      if (z[j] > z[argmax]) argmax = j;
    const double zmax = z[argmax];
    double sum = 0.0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(z[j]) - zmax);
    total += std::log(sum) + zmax - z[t];
    for (int64_t j = 0; j < V; ++j)
      dz[j] = static_cast<float>(std::exp(static_cast<double>(z[j]) - zmax) / sum / M);
    dz[t] -= static_cast<float>(1.0 / M);
    r.correct += argmax == t;
  }
  r.loss = total / static_cast<double>(M);
  return r;
}

}  // namespace qkv::nn
