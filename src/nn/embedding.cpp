// Embedding lookup: out[..., :] = weight[id, :].
#include "qkv/nn/embedding.hpp"

#include <algorithm>

#include "qkv/error.hpp"

namespace qkv::nn {

embedding::embedding(tensor weight) : weight_(std::move(weight)) {
  if (weight_.rank() != 2 || weight_.numel() == 0)
    throw error("embedding", "weight must be [num_embeddings, E] with both >= 1, got " +
                                 to_string(weight_.shape()));
}

embedding::embedding(int64_t num_embeddings, int64_t E, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  tensor w({num_embeddings, E});
  for (float& x : w.values()) x = normal(rng);
  *this = embedding(std::move(w));
}

embedding embedding::load(state_dict_reader& reader, const std::string& prefix) {
  return embedding(reader.take(prefix + "weight", reader.shape_of(prefix + "weight", 2)));
}

void embedding::save(state_dict& dict, const std::string& prefix) const {
  dict[prefix + "weight"] = weight_;
}

tensor embedding::forward(std::span<const int64_t> ids, const shape_t& shape) const {
  if (element_count(shape) != static_cast<int64_t>(ids.size()))
    throw error("ids", std::to_string(ids.size()) + " ids for shape " + to_string(shape));
  const int64_t E = embedding_dim();
  shape_t out_shape = shape;
  out_shape.push_back(E);
  tensor out(out_shape);
  for (size_t n = 0; n < ids.size(); ++n) {
    const int64_t id = ids[n];
    if (id < 0 || id >= num_embeddings())
      throw error("ids", "id " + std::to_string(id) + " at flat position " + std::to_string(n) +
                             " is outside [0, " + std::to_string(num_embeddings()) + ")");
    std::copy(weight_.data() + id * E, weight_.data() + (id + 1) * E,
              out.data() + static_cast<int64_t>(n) * E);
  }
  return out;
}

}  // namespace qkv::nn
