// SplitMix64 mixing of (seed, stream, index).
#include "qkv/nn/counter_rng.hpp"

namespace qkv::nn {
namespace {

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  // Chained mixing with the golden-ratio increment keeps (s, t, i) and (s, t', i') apart.
  return mix(mix(mix(seed + 0x9e3779b97f4a7c15ULL) + stream) + index);
}

float random_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return static_cast<float>(random_bits(seed, stream, index) >> 40) * 0x1.0p-24f;
}

}  // namespace qkv::nn
