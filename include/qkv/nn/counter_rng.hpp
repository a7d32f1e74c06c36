// Counter-based random numbers: a value is a pure function of (seed, stream, index), so a
// training run's randomness (batches, dropout) is reproducible from the step number alone and a
// checkpoint needs to store only the seed and the step, and threads cannot change the draws.
#pragma once

#include <cstdint>

namespace qkv::nn {

// SplitMix64's finaliser (Steele, Lea & Flood 2014) over the combined key: 64 well-mixed bits.
uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index);
// Uniform in [0, 1) with 24 bits of resolution (exact in fp32).
float random_uniform(uint64_t seed, uint64_t stream, uint64_t index);

}  // namespace qkv::nn
