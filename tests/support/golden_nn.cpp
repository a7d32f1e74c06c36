// Golden masks as nn::mha_masks.
#include "support/golden_nn.hpp"

namespace qkv::testing {

nn::mha_masks golden_masks(const golden_case& c, const std::string& attn_mask,
                           const std::string& key_padding_mask) {
  nn::mha_masks m;
  if (c.has_input(attn_mask)) {
    if (c.data()["inputs"][attn_mask]["dtype"] == "bool")
      m.attn_mask = c.input_bool(attn_mask);
    else
      m.attn_mask_additive = c.input(attn_mask);
  }
  if (c.has_input(key_padding_mask)) m.key_padding_mask = c.input_bool(key_padding_mask);
  return m;
}

}  // namespace qkv::testing
