// Cross-entropy. Per row with logits z and target t: loss = logsumexp(z) − z_t (max-subtracted,
// so large logits do not overflow), and ∂loss/∂z_j = softmax(z)_j − [j = t], divided by M for the
// mean. Rows run in parallel; each row's loss is kept and the losses are summed in row order.
#include "qkv/nn/cross_entropy.hpp"

#include <cmath>

#include "parallel_chunks.hpp"
#include "qkv/error.hpp"

namespace qkv::nn {
namespace {

// One row z [V] with target t: writes (softmax(z) − onehot(t))/M to dz and returns the row's loss
// log Σ_j exp(z_j − max z) + max z − z_t, the exponentials in float64.
double softmax_row(float* dz, const float* z, int64_t V, int32_t t, int64_t M, bool& correct) {
  int64_t argmax = 0;
  for (int64_t j = 1; j < V; ++j)
    if (z[j] > z[argmax]) argmax = j;
  const double zmax = z[argmax];
  double sum = 0.0;
  for (int64_t j = 0; j < V; ++j) {
    const double e = std::exp(static_cast<double>(z[j]) - zmax);
    sum += e;
    dz[j] = static_cast<float>(e);
  }
  const double scale = 1.0 / (sum * static_cast<double>(M));
  for (int64_t j = 0; j < V; ++j) dz[j] = static_cast<float>(dz[j] * scale);
  dz[t] -= static_cast<float>(1.0 / static_cast<double>(M));
  correct = argmax == t;
  return std::log(sum) + zmax - z[t];
}

}  // namespace

cross_entropy_result cross_entropy(const tensor& logits, const std::vector<int32_t>& targets) {
  if (logits.rank() != 2 || logits.size(0) == 0)
    throw error("logits", "expected [M,V] with M >= 1, got " + to_string(logits.shape()));
  const int64_t M = logits.size(0), V = logits.size(1);
  if (static_cast<int64_t>(targets.size()) != M)
    throw error("targets", "expected " + std::to_string(M) + " indices (logits " +
                               to_string(logits.shape()) + "), got " +
                               std::to_string(targets.size()));
  for (int64_t m = 0; m < M; ++m)
    if (const int32_t t = targets[static_cast<size_t>(m)]; t < 0 || t >= V)
      throw error("targets", "index " + std::to_string(t) + " at row " + std::to_string(m) +
                                 " outside [0, " + std::to_string(V) + ")");
  cross_entropy_result r;
  r.dlogits = tensor(logits.shape());
  std::vector<double> row_loss(static_cast<size_t>(M));
  std::vector<uint8_t> row_correct(static_cast<size_t>(M));
  detail::for_each_chunk(M, detail::rows_per_chunk, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      bool correct = false;
      row_loss[static_cast<size_t>(m)] =
          softmax_row(r.dlogits.data() + m * V, logits.data() + m * V, V,
                      targets[static_cast<size_t>(m)], M, correct);
      row_correct[static_cast<size_t>(m)] = correct;
    }
  });
  double total = 0.0;
  for (int64_t m = 0; m < M; ++m) {
    total += row_loss[static_cast<size_t>(m)];
    r.correct += row_correct[static_cast<size_t>(m)];
  }
  r.loss = total / static_cast<double>(M);
  return r;
}

}  // namespace qkv::nn
