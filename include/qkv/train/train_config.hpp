// The hyperparameters of a training run, the rule each one follows, and their names: the
// `qkv train` flag without its dashes, which is also the checkpoint's metadata entry
// "train.<name>".
#pragma once

#include <cstdint>
#include <string>

#include "qkv/nn/gpt.hpp"

namespace qkv::train {

struct train_config {
  nn::gpt_config model;  // vocab comes from the text
  int64_t batch = 16;    // B sequences of model.context tokens per step
  // Total steps (the schedule's length). 4000 steps of 2048 tokens fit `qkv train`'s default
  // 15 minutes at >= 9.1k tokens/s, evaluations included (docs/training.md).
  int64_t steps = 4000;
  float lr = 2e-3f, min_lr = 2e-4f;
  int64_t warmup = 100;
  float weight_decay = 0.1f, clip = 1.0f;
  float held_out = 0.1f;     // the last fraction of the text
  int64_t eval_batches = 8;  // held-out batches per evaluation (always the same ones)
  uint64_t seed = 1;
};

// Calls f(name, value) for every hyperparameter a checkpoint stores besides the model's shapes.
// The order is that of the first checkpoint format's positional tensor (attention-dropout was
// its last entry, added later), then the seed, which that format kept apart.
template <typename Config, typename F>
void for_each_hyperparameter(Config& c, F&& f) {
  f("heads", c.model.heads);
  f("dropout", c.model.dropout);
  f("batch", c.batch);
  f("steps", c.steps);
  f("lr", c.lr);
  f("min-lr", c.min_lr);
  f("warmup", c.warmup);
  f("weight-decay", c.weight_decay);
  f("clip", c.clip);
  f("held-out", c.held_out);
  f("eval-batches", c.eval_batches);
  f("attention-dropout", c.model.attention_dropout);
  f("seed", c.seed);
}

// Steps are stored in the loss curves as fp32, exact up to 2^24.
inline constexpr int64_t max_steps = int64_t{1} << 24;

// The first broken rule of a value on its own, as "name: rule, got value" (the name as in
// for_each_hyperparameter), or "" when there is none. The model's shapes are not looked at.
std::string hyperparameter_violation(const train_config& c);
// The same, then the model's shapes (layers, embed, context; heads dividing embed) and the
// memory a training step needs against the machine's. model.vocab 0 means "not known yet"
// (the memory rule then assumes the largest byte vocabulary, 256).
std::string train_config_violation(const train_config& c);

// About how many bytes a training step holds: the parameters with their gradients and AdamW
// moments, and the activations kept for the backward.
double training_memory_bytes(const train_config& c);

}  // namespace qkv::train
