// Dropout masks from the counter-based generator.
#include "qkv/nn/dropout.hpp"

#include "qkv/error.hpp"
#include "qkv/nn/counter_rng.hpp"

namespace qkv::nn {

tensor dropout_mask(const shape_t& shape, float p, uint64_t seed, uint64_t stream) {
  if (!(p >= 0.0f && p < 1.0f))
    throw error("dropout", "p must be in [0, 1), got " + std::to_string(p));
  tensor mask(shape, 1.0f);
  if (p == 0.0f) return mask;
  const float keep_scale = 1.0f / (1.0f - p);
  for (int64_t x = 0; x < mask.numel(); ++x)
    mask[x] = random_uniform(seed, stream, static_cast<uint64_t>(x)) >= p ? keep_scale : 0.0f;
  return mask;
}

void apply_dropout(tensor& x, const tensor& mask) {
  QKV_ASSERT(x.numel() == mask.numel());
  for (int64_t i = 0; i < x.numel(); ++i) x[i] *= mask[i];
}

}  // namespace qkv::nn
