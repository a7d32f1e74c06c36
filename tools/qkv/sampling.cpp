// Temperature and top-k sampling over the logits, in float64.
#include "sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qkv::cli {

int32_t sample(std::vector<float> logits, double temperature, int64_t top_k, float u) {
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (temperature == 0.0) return order[0];
  const size_t k = top_k > 0 ? std::min(order.size(), static_cast<size_t>(top_k)) : order.size();
  std::vector<double> p(k);
  for (size_t i = 0; i < k; ++i)
    p[i] = std::exp((logits[order[i]] - logits[order[0]]) / temperature);
  double target = u * std::accumulate(p.begin(), p.end(), 0.0);
  for (size_t i = 0; i < k; ++i)
    if ((target -= p[i]) < 0) return order[i];
  return order[k - 1];
}

}  // namespace qkv::cli
