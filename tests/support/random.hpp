// Seeded random tensors for tests.
#pragma once

#include <cstdint>
#include <random>

#include "qkv/tensor.hpp"

namespace qkv::testing {

// Normal(0, stddev) entries.
tensor random_tensor(const shape_t& shape, std::mt19937_64& rng, float stddev = 1.0f);
// Entries that are multiples of 2^-8 in [-2, 2]: a step of 2^-10 keeps them exact in fp32,
// which finite-difference checks need.
tensor random_grid_tensor(const shape_t& shape, std::mt19937_64& rng);

}  // namespace qkv::testing
