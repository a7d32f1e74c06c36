// Input files of the layer commands, with errors that name the flag.
#include "layer_inputs.hpp"

#include <cctype>
#include <variant>

#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"

namespace qkv::cli {

tensor read_float_input(const std::string& flag, const std::string& path) {
  try {
    return io::read_npy_float(path);
  } catch (const error& e) {
    throw error(flag + ": " + e.what());
  }
}

bool_tensor read_bool_input(const std::string& flag, const std::string& path) {
  io::npy_array a;
  try {
    a = io::read_npy(path);
  } catch (const error& e) {
    throw error(flag + ": " + e.what());
  }
  if (auto* b = std::get_if<bool_tensor>(&a)) return std::move(*b);
  throw error(flag + ": '" + path + "' must be a boolean array (|b1), got float");
}

nn::state_dict read_weights(const std::string& flag, const std::string& path) {
  try {
    return io::read_safetensors(path);
  } catch (const error& e) {
    throw error(flag + ": " + e.what());
  }
}

mask_file read_mask_input(const std::string& flag, const std::string& path) {
  mask_file m;
  if (path.empty()) return m;
  io::npy_array a;
  try {
    a = io::read_npy(path);
  } catch (const error& e) {
    throw error(flag + ": " + e.what());
  }
  if (auto* b = std::get_if<bool_tensor>(&a))
    m.boolean = std::move(*b);
  else
    m.additive = std::move(std::get<tensor>(a));
  return m;
}

std::string to_flag_message(const std::string& message,
                            const std::vector<std::pair<std::string, std::string>>& renames) {
  if (message.rfind("weights ", 0) == 0) return "--" + message;  // state_dict_reader's messages
  size_t n = 0;
  while (n < message.size() &&
         (std::islower(static_cast<unsigned char>(message[n])) || message[n] == '_'))
    ++n;
  if (n == 0 || n >= message.size() || message[n] != ':') return message;
  std::string name = message.substr(0, n);
  for (const auto& [from, to] : renames)
    if (name == from) name = to;
  for (char& c : name)
    if (c == '_') c = '-';
  return "--" + name + message.substr(n);
}

}  // namespace qkv::cli
