// Sinusoidal encodings and RoPE; angles are computed in float64 so that long positions keep
// their accuracy (pos·theta grows large before it is reduced by sin/cos).
#include "qkv/nn/positional_encoding.hpp"

#include <cmath>

#include "qkv/error.hpp"

namespace qkv::nn {

tensor sinusoidal_positional_encoding(int64_t N, int64_t E, int64_t start) {
  if (N < 0 || E < 1 || start < 0)
    throw error(
        "positional encoding: need N >= 0, E >= 1, start >= 0, got N = " + std::to_string(N) +
        ", E = " + std::to_string(E) + ", start = " + std::to_string(start));
  tensor pe({N, E});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < E; ++c) {
      const int64_t i2 = c - c % 2;  // 2i for both members of the pair
      const double angle = static_cast<double>(start + n) /
                           std::pow(10000.0, static_cast<double>(i2) / static_cast<double>(E));
      pe[n * E + c] = static_cast<float>(c % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  return pe;
}

tensor add_positional_encoding(const tensor& x, int64_t start) {
  if (x.rank() != 3) throw error("x", "expected [B,N,E], got " + to_string(x.shape()));
  const int64_t B = x.size(0), N = x.size(1), E = x.size(2);
  const tensor pe = sinusoidal_positional_encoding(N, E, start);
  tensor out = x;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N * E; ++n) out[b * N * E + n] += pe[n];
  return out;
}

void apply_rope_in_place(const mutable_tensor_view& x, int64_t start, const rope_config& config) {
  if (x.rank() != 4 || x.size(3) % 2 != 0)
    throw error("x", "expected [B,H,N,hd] with hd even, got " + to_string(x.shape()));
  if (start < 0 || !(config.base > 1.0f))
    throw error("rope", "need start >= 0 and base > 1, got start = " + std::to_string(start));
  const int64_t B = x.size(0), H = x.size(1), N = x.size(2), hd = x.size(3), pairs = hd / 2;
  const int64_t sb = x.stride(0), sh = x.stride(1), sn = x.stride(2), sc = x.stride(3);
  float* data = x.mutable_f32();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < pairs; ++i) {
      const double theta = std::pow(static_cast<double>(config.base), -2.0 * i / hd);
      const double angle = static_cast<double>(start + n) * theta;
      const double c = std::cos(angle), s = std::sin(angle);
      const int64_t a = config.layout == rope_layout::half ? i : 2 * i;
      const int64_t b = config.layout == rope_layout::half ? i + pairs : 2 * i + 1;
      for (int64_t bb = 0; bb < B; ++bb)
        for (int64_t h = 0; h < H; ++h) {
          float* row = data + bb * sb + h * sh + n * sn;
          const double xa = row[a * sc], xb = row[b * sc];
          row[a * sc] = static_cast<float>(xa * c - xb * s);
          row[b * sc] = static_cast<float>(xb * c + xa * s);
        }
    }
}

tensor apply_rope(const tensor& x, int64_t start, const rope_config& config) {
  tensor out = x;
  apply_rope_in_place(out, start, config);
  return out;
}

}  // namespace qkv::nn
