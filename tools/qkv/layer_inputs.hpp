// Reading the inputs of the layer commands (`qkv mha`, `qkv layer`): .npy tensors and masks,
// .safetensors weights, and library messages re-addressed to the flag that supplied the input.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qkv/nn/state_dict.hpp"
#include "qkv/tensor.hpp"

namespace qkv::cli {

tensor read_float_input(const std::string& flag, const std::string& path);
bool_tensor read_bool_input(const std::string& flag, const std::string& path);
nn::state_dict read_weights(const std::string& flag, const std::string& path);

// A PyTorch-style mask file: bool (true = masked out) or float (added to the scores).
struct mask_file {
  std::optional<bool_tensor> boolean;
  std::optional<tensor> additive;
};
// Nothing is set for an empty path.
mask_file read_mask_input(const std::string& flag, const std::string& path);

// "key_padding_mask: expected ..." -> "--key-padding-mask: expected ...": library messages
// name arguments with underscores, the command's flags use hyphens. `renames` maps library
// names whose flag differs (e.g. num_heads -> heads).
std::string to_flag_message(const std::string& message,
                            const std::vector<std::pair<std::string, std::string>>& renames = {});

}  // namespace qkv::cli
