// Backward of the embedding lookup y[n] = W[ids[n]]: a scatter-add of dy's rows into the rows of
// ∂L/∂W they were read from, in index order so that repeated ids sum deterministically.
#include "qkv/error.hpp"
#include "qkv/nn/embedding.hpp"

namespace qkv::nn {

void embedding::backward(std::span<const int64_t> ids, const tensor& dy, tensor& grad) const {
  const int64_t E = embedding_dim();
  if (dy.numel() != static_cast<int64_t>(ids.size()) * E || grad.shape() != weight_.shape())
    throw error("embedding backward: dy must hold " + std::to_string(ids.size()) + " rows of " +
                std::to_string(E) + " and grad the weight's shape " + to_string(weight_.shape()) +
                ", got dy " + to_string(dy.shape()) + ", grad " + to_string(grad.shape()));
  for (size_t n = 0; n < ids.size(); ++n) {
    QKV_ASSERT(ids[n] >= 0 && ids[n] < num_embeddings());
    const float* d = dy.data() + static_cast<int64_t>(n) * E;
    float* g = grad.data() + ids[n] * E;
    for (int64_t e = 0; e < E; ++e) g[e] += d[e];
  }
}

parameter embedding::as_parameter(const std::string& prefix, tensor& grad, bool decay) {
  return {prefix + "weight", &weight_, &grad, decay};
}

}  // namespace qkv::nn
