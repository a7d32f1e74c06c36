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

// Normal(0, 1) attention inputs, drawn in this order: q [B,Hq,Nq,d], k [B,Hkv,Nk,d],
// v [B,Hkv,Nk,dv] and the output gradient g [B,Hq,Nq,dv]. `s` is any case with those sizes.
struct attention_inputs {
  tensor q, k, v, g;
};
template <class Shape>
attention_inputs random_attention_inputs(const Shape& s, std::mt19937_64& rng) {
  // A braced list evaluates left to right, so the draws keep this order.
  return {random_tensor({s.B, s.Hq, s.Nq, s.d}, rng), random_tensor({s.B, s.Hkv, s.Nk, s.d}, rng),
          random_tensor({s.B, s.Hkv, s.Nk, s.dv}, rng),
          random_tensor({s.B, s.Hq, s.Nq, s.dv}, rng)};
}

}  // namespace qkv::testing
