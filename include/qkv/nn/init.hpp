// Random parameter initialisation for freshly built layers (PyTorch's default schemes), seeded
// so that a layer built twice with the same generator is the same layer.
#pragma once

#include <random>

#include "qkv/tensor.hpp"

namespace qkv::nn {

// U(-bound, bound) entries.
tensor uniform_tensor(const shape_t& shape, float bound, std::mt19937_64& rng);
// Xavier/Glorot uniform for a [fan_out, fan_in] matrix: bound = sqrt(6 / (fan_in + fan_out)).
tensor xavier_uniform(int64_t fan_out, int64_t fan_in, std::mt19937_64& rng);

}  // namespace qkv::nn
