// Training checkpoints as one .safetensors file (docs/contracts.md, section 4): the model under
// "model.", the AdamW moments under "optim.", the byte vocabulary and the loss curves under
// "train.", and the run's hyperparameters, seed and step (the whole RNG and data position:
// batches and dropout masks are functions of them) as named text entries of the header's
// __metadata__. Checkpoints of the first format, whose hyperparameters were a positional fp32
// tensor and whose seed and step were 16-bit pieces, still load. Every value is checked on
// loading, and a bad one is refused with a qkv::error naming the checkpoint and the entry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qkv/io/safetensors.hpp"
#include "qkv/train/loss_plot.hpp"
#include "qkv/train/train_config.hpp"

namespace qkv::train {

// The __metadata__ entry that marks the named format, and its value.
inline constexpr const char* checkpoint_format_key = "qkv.train.format";
inline constexpr const char* checkpoint_format = "2";

// What a checkpoint holds besides the model and optimiser tensors.
struct checkpoint_state {
  train_config config;  // model.vocab/context/embed/layers are not stored here: they are the
                        // model tensors' shapes
  uint64_t step = 0;
  std::vector<uint8_t> vocabulary;  // sorted distinct bytes
  std::vector<loss_point> train_curve, eval_curve;
};

// The tensors and metadata entries of `state` under "train." (added to `tensors` and `meta`).
void store_checkpoint_state(const checkpoint_state& state, io::named_tensors& tensors,
                            io::metadata& meta);
// Reads and checks them (either format); `path` names the checkpoint in messages.
checkpoint_state load_checkpoint_state(const io::named_tensors& tensors, const io::metadata& meta,
                                       const std::string& path);

// The tensors under `prefix` with the prefix removed.
io::named_tensors with_prefix_removed(const io::named_tensors& tensors, const std::string& prefix);
// Moves `from` into `to` with every name prefixed.
void add_with_prefix(io::named_tensors& to, const io::named_tensors& from,
                     const std::string& prefix);

}  // namespace qkv::train
