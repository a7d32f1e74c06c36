// Dropout on the attention weights (FlashAttention's attention dropout): whether score
// (b, h, i, j) is kept is a pure function of (seed, b, h, i, j), a counter-based hash, so the
// forward and the backward regenerate the same mask in any order and never store it.
#pragma once

#include <cmath>
#include <cstdint>

#include "qkv/attention_params.hpp"

namespace qkv::detail {

// SplitMix64's finaliser (Steele, Lea & Flood 2014): 64 well-mixed bits of z.
inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The key of one score row (b, h, i): chained mixing with the golden-ratio increment keeps
// rows apart; a score's bits are then splitmix64(row key + j).
inline uint64_t dropout_row_key(uint64_t seed, int64_t b, int64_t h, int64_t i) {
  uint64_t z = splitmix64(seed + 0x9e3779b97f4a7c15ULL);
  z = splitmix64(z + static_cast<uint64_t>(b));
  z = splitmix64(z + static_cast<uint64_t>(h));
  return splitmix64(z + static_cast<uint64_t>(i));
}

// A score is kept when its 24-bit uniform u = bits >> 40 (in units of 2^-24) satisfies
// u >= p, i.e. bits >> 40 >= ceil(p·2^24): kept with probability 1 - p (to 2^-24).
inline uint64_t dropout_threshold(float p) {
  return static_cast<uint64_t>(std::ceil(static_cast<double>(p) * 0x1.0p24));
}

inline bool dropout_keeps(uint64_t row_key, int64_t j, uint64_t threshold) {
  return (splitmix64(row_key + static_cast<uint64_t>(j)) >> 40) >= threshold;
}

// Z_ij = P_ij·M_ij/(1 - p) over keys [j0, j0 + n) of row (b, h, i), in place: M_ij = 1 when the
// score is kept, else 0. A no-op when p.dropout_p is 0.
inline void apply_attention_dropout(const attention_params& p, int64_t b, int64_t h, int64_t i,
                                    int64_t j0, int64_t n, float* row) {
  if (p.dropout_p == 0.0f) return;
  const uint64_t key = dropout_row_key(p.dropout_seed, b, h, i);
  const uint64_t threshold = dropout_threshold(p.dropout_p);
  const float keep_scale = 1.0f / (1.0f - p.dropout_p);
  for (int64_t jj = 0; jj < n; ++jj)
    row[jj] = dropout_keeps(key, j0 + jj, threshold) ? row[jj] * keep_scale : 0.0f;
}

}  // namespace qkv::detail
