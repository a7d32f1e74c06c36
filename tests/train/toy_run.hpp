// A toy text and a small training configuration shared by the training tests: a few steps run
// in a fraction of a second.
#pragma once

#include <string>

#include "qkv/train/train_config.hpp"

namespace qkv::train {

inline std::string toy_text() {
  std::string text;
  for (int i = 0; i < 200; ++i)
    text +=
        "The quick brown fox " + std::to_string(i * 7919 % 1000) + " jumps over the lazy dog.\n";
  return text;
}

// L=2, H=2, E=16, T=16 with residual dropout, B=4, 8 steps.
inline train_config toy_config() {
  train_config c;
  c.model = {.context = 16, .embed = 16, .heads = 2, .layers = 2, .dropout = 0.1f};
  c.batch = 4;
  c.steps = 8;
  c.warmup = 2;
  c.eval_batches = 2;
  return c;
}

}  // namespace qkv::train
