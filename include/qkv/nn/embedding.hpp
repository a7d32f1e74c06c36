// nn.Embedding: a lookup table of `num_embeddings` vectors of dim E; token id t -> row t.
// state_dict name: `weight` [num_embeddings, E].
#pragma once

#include <random>
#include <span>
#include <string>

#include "qkv/nn/parameter.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

class embedding {
 public:
  embedding() = default;
  explicit embedding(tensor weight);  // [num_embeddings, E]
  // PyTorch's initialisation: N(0, 1) entries.
  embedding(int64_t num_embeddings, int64_t E, std::mt19937_64& rng);

  static embedding load(state_dict_reader& reader, const std::string& prefix);
  void save(state_dict& dict, const std::string& prefix) const;

  // ids of shape `shape` (e.g. [B,N]) -> [shape..., E]. An id outside [0, num_embeddings) is a
  // qkv::error naming its position and value.
  tensor forward(std::span<const int64_t> ids, const shape_t& shape) const;

  // Backward of the lookup (embedding_backward.cpp): grad[ids[n]] += dy[n] for every n, in order
  // (an id that occurs twice gets the sum). dy [ids.size(), E], grad shaped like weight.
  void backward(std::span<const int64_t> ids, const tensor& dy, tensor& grad) const;
  // `<prefix>weight` with its gradient, for an optimiser.
  parameter as_parameter(const std::string& prefix, tensor& grad, bool decay);

  int64_t num_embeddings() const { return weight_.size(0); }
  int64_t embedding_dim() const { return weight_.size(1); }
  const tensor& weight() const { return weight_; }

 private:
  tensor weight_;
};

}  // namespace qkv::nn
