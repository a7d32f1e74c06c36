#include "support/random.hpp"

namespace qkv::testing {

tensor random_tensor(const shape_t& shape, std::mt19937_64& rng, float stddev) {
  std::normal_distribution<float> normal(0.0f, stddev);
  tensor t(shape);
  for (float& x : t.values()) x = normal(rng);
  return t;
}

tensor random_grid_tensor(const shape_t& shape, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> step(-512, 512);
  tensor t(shape);
  for (float& x : t.values()) x = static_cast<float>(step(rng)) / 256.0f;
  return t;
}

}  // namespace qkv::testing
