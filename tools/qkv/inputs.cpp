// Input files of the commands, with errors that name the flag.
#include "inputs.hpp"

#include <variant>

#include "qkv/io/safetensors.hpp"

namespace qkv::cli {

io::npy_array read_npy_input(const std::string& flag, const std::string& path) {
  return read_for_flag(flag, [&] { return io::read_npy(path); });
}

namespace {

// The array of type T (tensor or bool_tensor) in the .npy file of `flag`; `want` names T's
// dtypes, `other` the kind refused.
template <class T>
T read_typed_input(const std::string& flag, const std::string& path, const char* want,
                   const char* other) {
  io::npy_array a = read_npy_input(flag, path);
  if (auto* t = std::get_if<T>(&a)) return std::move(*t);
  throw error(flag + ": '" + path + "' must be " + want + ", got " + other);
}

}  // namespace

tensor read_float_input(const std::string& flag, const std::string& path) {
  return read_typed_input<tensor>(flag, path, "a float array (<f4, <f8 or <f2)", "a boolean one");
}

stored_tensor read_stored_input(const std::string& flag, const std::string& path) {
  return read_for_flag(flag, [&] { return io::read_npy_stored(path); });
}

bool_tensor read_bool_input(const std::string& flag, const std::string& path) {
  return read_typed_input<bool_tensor>(flag, path, "a boolean array (|b1)", "a float one");
}

nn::state_dict read_weights(const std::string& flag, const std::string& path) {
  return read_for_flag(flag, [&] { return io::read_safetensors(path); });
}

mask_file read_mask_input(const std::string& flag, const std::string& path) {
  mask_file m;
  if (path.empty()) return m;
  io::npy_array a = read_npy_input(flag, path);
  if (auto* b = std::get_if<bool_tensor>(&a))
    m.boolean = std::move(*b);
  else
    m.additive = std::move(std::get<tensor>(a));
  return m;
}

std::string flag_message(const error& e,
                         const std::vector<std::pair<std::string, std::string>>& renames) {
  std::string name = e.argument();
  // No argument, or one already a flag (read_for_flag): the message stands as it is.
  if (name.empty() || name.rfind("--", 0) == 0) return e.what();
  for (const auto& [from, to] : renames)
    if (name == from) name = to;
  for (char& c : name)
    if (c == '_') c = '-';
  return "--" + name + ": " + e.rule();
}

}  // namespace qkv::cli
