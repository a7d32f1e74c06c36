// Golden cases as nn objects: a module loaded from the case's weights, masks from its inputs.
#pragma once

#include <string>

#include "qkv/nn/mha_masks.hpp"
#include "qkv/nn/state_dict.hpp"
#include "support/golden.hpp"

namespace qkv::testing {

// Module::load(reader, "", args...) over the case's state_dict, which must use every tensor.
template <class Module, class... Args>
Module load_golden_module(const golden_case& c, const Args&... args) {
  const nn::state_dict dict = c.state_dict();
  nn::state_dict_reader reader(dict, c.id);
  Module module = Module::load(reader, "", args...);
  reader.finish();
  return module;
}

// The masks among the case's inputs: `attn_mask` (bool: true = hidden, else float: added to
// the scores) and `key_padding_mask` (bool), each absent when the case lacks it.
nn::mha_masks golden_masks(const golden_case& c, const std::string& attn_mask,
                           const std::string& key_padding_mask);

}  // namespace qkv::testing
