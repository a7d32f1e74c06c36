// SplitMix64 mixing of (seed, stream, index), with the finaliser the attention dropout's lookup
// uses (kernels/dropout_lookup.hpp).
#include "qkv/nn/counter_rng.hpp"

#include "kernels/dropout_lookup.hpp"

namespace qkv::nn {

uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  using qkv::detail::splitmix64;
  // Chained mixing with the golden-ratio increment keeps (s, t, i) and (s, t', i') apart.
  return splitmix64(splitmix64(splitmix64(seed + 0x9e3779b97f4a7c15ULL) + stream) + index);
}

float random_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return static_cast<float>(random_bits(seed, stream, index) >> 40) * 0x1.0p-24f;
}

}  // namespace qkv::nn
