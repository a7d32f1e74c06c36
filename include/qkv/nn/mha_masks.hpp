// The masks of nn.MultiheadAttention and the Transformer layers, with PyTorch's meanings
// (boolean true = masked OUT, the inverse of sdpa's), and their conversion to one sdpa mask.
#pragma once

#include <optional>

#include "qkv/attention.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

struct mha_masks {
  std::optional<bool_tensor> key_padding_mask = {};  // [B,Nk]: true = ignore this key
  std::optional<bool_tensor> attn_mask = {};         // [Nq,Nk] or [B·H,Nq,Nk]: true = NOT allowed
  std::optional<tensor> attn_mask_additive = {};     // [Nq,Nk] or [B·H,Nq,Nk]: added to the scores
  bool is_causal = false;  // top-left causal, combined with the masks by AND
};

// The one sdpa mask (docs/contracts.md section 1) that keeps exactly the keys these masks allow:
// key padding [B,Nk] -> [B,1,1,Nk], attn_mask [Nq,Nk] (or [B,H,Nq,Nk]), combined by AND; an
// additive attn_mask gets -inf at padded keys. is_causal is not included (sdpa's causal flag).
// `prefix` names the arguments in messages (e.g. "src_" for src_key_padding_mask).
attention_mask to_sdpa_mask(const mha_masks& masks, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                            const std::string& prefix = "");

}  // namespace qkv::nn
