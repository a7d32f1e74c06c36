// Inverted dropout (Srivastava et al. 2014): in training each entry is kept with probability
// 1 − p and scaled by 1/(1 − p), so evaluation (no dropout) needs no rescaling.
#pragma once

#include <cstdint>

#include "qkv/tensor.hpp"

namespace qkv::nn {

// The multiplier tensor: entry x is 1/(1−p) when random_uniform(seed, stream, x) >= p, else 0.
// p = 0 gives all ones. Throws qkv::error unless 0 <= p < 1.
tensor dropout_mask(const shape_t& shape, float p, uint64_t seed, uint64_t stream);
// y = x ⊙ mask in place; the backward is the same product on the gradient (dy/dx = mask).
void apply_dropout(tensor& x, const tensor& mask);

}  // namespace qkv::nn
