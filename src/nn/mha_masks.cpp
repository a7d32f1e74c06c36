// PyTorch's inverted MHA masks -> one sdpa mask. Legend: B batch, H query heads, Nq queries,
// Nk keys. Masks are small ([B,Nk], [Nq,Nk]); combining them copies at most [B,H,Nq,Nk].
#include "qkv/nn/mha_masks.hpp"

#include <limits>

#include "qkv/error.hpp"

namespace qkv::nn {
namespace {

// The attn_mask shape as rank 4: [Nq,Nk] -> [1,1,Nq,Nk]; [B·H,Nq,Nk] -> [B,H,Nq,Nk].
shape_t attn_mask_shape4(const shape_t& shape, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                         const std::string& name) {
  if (shape == shape_t{Nq, Nk}) return {1, 1, Nq, Nk};
  if (shape == shape_t{B * H, Nq, Nk}) return {B, H, Nq, Nk};
  throw error(name, "expected [Nq,Nk] = " + to_string({Nq, Nk}) + " or [B·H,Nq,Nk] = " +
                        to_string({B * H, Nq, Nk}) + ", got " + to_string(shape));
}

}  // namespace

attention_mask to_sdpa_mask(const mha_masks& masks, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                            const std::string& prefix) {
  const std::string kpm_name = prefix + "key_padding_mask";
  const std::string mask_name = prefix.empty() ? "attn_mask" : prefix + "mask";
  if (masks.attn_mask && masks.attn_mask_additive)
    throw error(mask_name, "give a boolean or a float mask, not both");
  if (masks.key_padding_mask && masks.key_padding_mask->shape() != shape_t{B, Nk})
    throw error(kpm_name, "expected [B,Nk] = " + to_string({B, Nk}) + ", got " +
                              to_string(masks.key_padding_mask->shape()));
  const bool_tensor* padding = masks.key_padding_mask ? &*masks.key_padding_mask : nullptr;

  attention_mask out;
  if (masks.attn_mask_additive) {
    const tensor& add = *masks.attn_mask_additive;
    const shape_t s4 = attn_mask_shape4(add.shape(), B, H, Nq, Nk, mask_name);
    if (!padding) {
      out.additive = add.reshaped(s4);
      return out;
    }
    // bias[b,h,i,j] = attn_mask[(b,h),i,j] + (-inf if key j of batch b is padding).
    const int64_t Hm = s4[1];
    tensor bias({B, Hm, Nq, Nk});
    const bool per_batch = add.rank() == 3;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hm; ++h)
        for (int64_t i = 0; i < Nq; ++i)
          for (int64_t j = 0; j < Nk; ++j) {
            const float a = add[((per_batch ? b * Hm + h : 0) * Nq + i) * Nk + j];
            bias[((b * Hm + h) * Nq + i) * Nk + j] =
                (*padding)[b * Nk + j] ? -std::numeric_limits<float>::infinity() : a;
          }
    out.additive = std::move(bias);
    return out;
  }
  if (!masks.attn_mask) {
    if (!padding) return out;
    bool_tensor keep({B, 1, 1, Nk});
    for (int64_t n = 0; n < B * Nk; ++n) keep[n] = !(*padding)[n];
    out.boolean = std::move(keep);
    return out;
  }
  // keep[b,h,i,j] = !attn_mask[(b,h),i,j] AND !padding[b,j].
  const bool_tensor& disallow = *masks.attn_mask;
  const shape_t s4 = attn_mask_shape4(disallow.shape(), B, H, Nq, Nk, mask_name);
  const int64_t Bm = padding ? B : s4[0], Hm = s4[1];
  bool_tensor keep({Bm, Hm, Nq, Nk});
  const bool per_batch = disallow.rank() == 3;
  for (int64_t b = 0; b < Bm; ++b)
    for (int64_t h = 0; h < Hm; ++h)
      for (int64_t i = 0; i < Nq; ++i)
        for (int64_t j = 0; j < Nk; ++j) {
          const int64_t src = ((per_batch ? b * Hm + h : 0) * Nq + i) * Nk + j;
          keep[((b * Hm + h) * Nq + i) * Nk + j] =
              !disallow[src] && !(padding && (*padding)[b * Nk + j]);
        }
  out.boolean = std::move(keep);
  return out;
}

}  // namespace qkv::nn
