// Seeded uniform initialisers.
#include "qkv/nn/init.hpp"

#include <cmath>

namespace qkv::nn {

tensor uniform_tensor(const shape_t& shape, float bound, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-bound, bound);
  tensor t(shape);
  for (float& x : t.values()) x = u(rng);
  return t;
}

tensor xavier_uniform(int64_t fan_out, int64_t fan_in, std::mt19937_64& rng) {
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_tensor({fan_out, fan_in}, static_cast<float>(bound), rng);
}

}  // namespace qkv::nn
