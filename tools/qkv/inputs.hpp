// Reading the commands' input files (.npy tensors and masks, .safetensors weights), and library
// messages re-addressed to the flag that supplied the argument. Every error names the flag.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/tensor.hpp"

namespace qkv::cli {

// What `read()` returns: a library call that reads the file (or folder) given to `flag`. Its
// qkv::error comes back as the flag's: "--q: 'x.npy': ...", with argument() the flag.
template <class Read>
auto read_for_flag(const std::string& flag, Read read) -> decltype(read()) {
  try {
    return read();
  } catch (const error& e) {
    throw error(flag, e.what());
  }
}

// The .npy file `path` given to `flag`, as read (float or boolean).
io::npy_array read_npy_input(const std::string& flag, const std::string& path);
// A float .npy (a boolean one is refused).
tensor read_float_input(const std::string& flag, const std::string& path);
// A float .npy in the storage the kernels read: <f2 kept as f16, <f4 and <f8 as f32.
stored_tensor read_stored_input(const std::string& flag, const std::string& path);
// A boolean .npy (a float one is refused).
bool_tensor read_bool_input(const std::string& flag, const std::string& path);
// A .safetensors state_dict.
nn::state_dict read_weights(const std::string& flag, const std::string& path);

// A PyTorch-style mask file: bool (true = masked out) or float (added to the scores).
struct mask_file {
  std::optional<bool_tensor> boolean;
  std::optional<tensor> additive;
};
// Nothing is set for an empty path.
mask_file read_mask_input(const std::string& flag, const std::string& path);

// A library error as the command line says it: "key_padding_mask: expected ..." becomes
// "--key-padding-mask: expected ...". The argument is the error's own (qkv::error::argument()),
// never read from the message's text. Library names become flags with hyphens for underscores;
// `renames` maps those whose flag differs (num_heads -> heads). A message about no argument, or
// about a flag already, is returned as it is.
std::string flag_message(const error& e,
                         const std::vector<std::pair<std::string, std::string>>& renames = {});

}  // namespace qkv::cli
