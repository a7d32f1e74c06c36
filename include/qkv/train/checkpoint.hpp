// Training checkpoints as one .safetensors file (DESIGN section 4): the model under "model.",
// the AdamW moments under "optim.", and under "train." the run's hyperparameters, the vocabulary,
// the seed and step (the whole RNG and data position: batches and dropout masks are functions of
// them) and the loss curves so far. Written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qkv/io/safetensors.hpp"

namespace qkv::train {

// Integers travel as fp32 tensors of 16-bit pieces, which fp32 holds exactly.
std::vector<float> pack_u64(uint64_t value);
// Throws qkv::error naming `name` unless the tensor holds 4 pieces in [0, 65535].
uint64_t unpack_u64(const io::named_tensors& tensors, const std::string& name);

// The tensors under `prefix` with the prefix removed.
io::named_tensors with_prefix_removed(const io::named_tensors& tensors, const std::string& prefix);
// Moves `from` into `to` with every name prefixed.
void add_with_prefix(io::named_tensors& to, const io::named_tensors& from,
                     const std::string& prefix);
// The tensor `name` of a checkpoint; throws qkv::error naming the file when it is missing.
const tensor& checkpoint_tensor(const io::named_tensors& tensors, const std::string& name,
                                const std::string& path);

}  // namespace qkv::train
