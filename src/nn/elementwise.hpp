// Element-wise passes and reductions the layers share, vectorised for the CPU the program runs
// on and split into the fixed chunks of parallel_chunks.hpp: a reduction sums its chunks in
// chunk order, so every result has the same bits on any number of threads. Private to src/nn.
#pragma once

#include <cstdint>

#include "qkv/tensor.hpp"

namespace qkv::nn::detail {

// a + b of two tensors of the same shape, in a's buffer.
tensor add(tensor a, const tensor& b);

// sums[j] += Σ_r x[r·ld + j] for R rows of n columns, rows ld floats apart: a bias gradient.
void add_column_sums(float* sums, const float* x, int64_t R, int64_t n, int64_t ld);

// Σ x[i]² over n floats, summed in float64.
double sum_of_squares(const float* x, int64_t n);

// x[i] ← x[i]·c for n floats, each product taken in float64 and rounded once.
void scale(float* x, int64_t n, double c);

}  // namespace qkv::nn::detail
