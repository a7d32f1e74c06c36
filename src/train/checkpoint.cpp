// Checkpoint helpers: exact integers in fp32 tensors and name prefixes.
#include "qkv/train/checkpoint.hpp"

#include "qkv/error.hpp"

namespace qkv::train {

std::vector<float> pack_u64(uint64_t value) {
  std::vector<float> pieces;
  for (int i = 0; i < 4; ++i) pieces.push_back(static_cast<float>((value >> (16 * i)) & 0xffff));
  return pieces;
}

uint64_t unpack_u64(const io::named_tensors& tensors, const std::string& name) {
  const auto it = tensors.find(name);
  if (it == tensors.end() || it->second.numel() != 4)
    throw error("checkpoint: tensor '" + name + "' must hold 4 16-bit pieces");
  uint64_t value = 0;
  for (int i = 0; i < 4; ++i) {
    const float piece = it->second[i];
    if (!(piece >= 0.0f && piece <= 65535.0f) ||
        piece != static_cast<float>(static_cast<int>(piece)))
      throw error("checkpoint: tensor '" + name + "' holds a piece outside [0, 65535]");
    value |= static_cast<uint64_t>(piece) << (16 * i);
  }
  return value;
}

io::named_tensors with_prefix_removed(const io::named_tensors& tensors, const std::string& prefix) {
  io::named_tensors out;
  for (const auto& [name, t] : tensors)
    if (name.starts_with(prefix)) out[name.substr(prefix.size())] = t;
  return out;
}

void add_with_prefix(io::named_tensors& to, const io::named_tensors& from,
                     const std::string& prefix) {
  for (const auto& [name, t] : from) to[prefix + name] = t;
}

const tensor& checkpoint_tensor(const io::named_tensors& tensors, const std::string& name,
                                const std::string& path) {
  const auto it = tensors.find(name);
  if (it == tensors.end())
    throw error("checkpoint '" + path + "': missing tensor '" + name +
                "' (not a qkv train checkpoint?)");
  return it->second;
}

}  // namespace qkv::train
