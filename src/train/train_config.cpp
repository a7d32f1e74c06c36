// The rules of the training hyperparameters, in one place for the command line and checkpoints.
#include "qkv/train/train_config.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace qkv::train {
namespace {

// More held-out batches per evaluation than this would make every evaluation take hours.
constexpr int64_t max_eval_batches = 100000;

std::string number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", x);
  return buffer;
}

std::string gib(double bytes) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buffer;
}

double physical_memory_bytes() {
  return static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

std::string at_least_one(const char* name, int64_t v) {
  return v >= 1 ? std::string() : std::string(name) + ": must be >= 1, got " + std::to_string(v);
}

}  // namespace

double training_memory_bytes(const train_config& c) {
  const double V = static_cast<double>(c.model.vocab > 0 ? c.model.vocab : 256);
  const auto T = static_cast<double>(c.model.context), E = static_cast<double>(c.model.embed),
             L = static_cast<double>(c.model.layers), B = static_cast<double>(c.batch);
  // wte, wpe, lm_head; per block 4 E×E attention and 2 4E×E FFN matrices with their biases, two
  // norms; the final norm.
  const double parameters = 2 * V * E + T * E + L * (12 * E * E + 13 * E) + 2 * E;
  // Per block the forward keeps about 19 [B,T,E] tensors (inputs, norms, Q/K/V and the
  // attention output, the 4E-wide FFN hidden layer twice, dropout masks) and the backward
  // adds a few more; the logits and their gradient are [B,T,V].
  const double activations = L * 24 * B * T * E + 3 * B * T * V;
  return 4.0 * (4 * parameters + activations);  // fp32; weights, gradients, two AdamW moments
}

std::string hyperparameter_violation(const train_config& c) {
  const nn::gpt_config& m = c.model;
  for (const auto& [name, v] :
       {std::pair{"heads", m.heads}, std::pair{"batch", c.batch}, std::pair{"steps", c.steps},
        std::pair{"eval-batches", c.eval_batches}})
    if (std::string why = at_least_one(name, v); !why.empty()) return why;
  if (c.steps > max_steps)
    return "steps: must be <= 2^24 = " + std::to_string(max_steps) + ", got " +
           std::to_string(c.steps);
  if (c.warmup < 0 || c.warmup > max_steps)
    return "warmup: must be in [0, 2^24], got " + std::to_string(c.warmup);
  if (c.eval_batches > max_eval_batches)
    return "eval-batches: must be <= " + std::to_string(max_eval_batches) + ", got " +
           std::to_string(c.eval_batches);
  for (const auto& [name, p] :
       {std::pair{"dropout", m.dropout}, std::pair{"attention-dropout", m.attention_dropout}})
    if (!(p >= 0.0f && p < 1.0f))
      return std::string(name) + ": must be in [0, 1), got " + number(p);
  if (!(c.held_out > 0.0f && c.held_out < 1.0f))
    return "held-out: must be in (0, 1), got " + number(c.held_out);
  for (const auto& [name, x] : {std::pair{"lr", c.lr}, std::pair{"clip", c.clip}})
    if (!(std::isfinite(x) && x > 0.0f))
      return std::string(name) + ": must be finite and > 0, got " + number(x);
  for (const auto& [name, x] :
       {std::pair{"min-lr", c.min_lr}, std::pair{"weight-decay", c.weight_decay}})
    if (!(std::isfinite(x) && x >= 0.0f))
      return std::string(name) + ": must be finite and >= 0, got " + number(x);
  return "";
}

std::string train_config_violation(const train_config& c) {
  if (std::string why = hyperparameter_violation(c); !why.empty()) return why;
  const nn::gpt_config& m = c.model;
  for (const auto& [name, v] : {std::pair{"layers", m.layers}, std::pair{"embed", m.embed},
                                std::pair{"context", m.context}})
    if (std::string why = at_least_one(name, v); !why.empty()) return why;
  if (m.embed % m.heads != 0)
    return "heads: must divide embed = " + std::to_string(m.embed) + ", got " +
           std::to_string(m.heads);
  if (const double need = training_memory_bytes(c), have = physical_memory_bytes(); need > have)
    return "batch: B = " + std::to_string(c.batch) +
           " sequences of T = " + std::to_string(m.context) +
           " tokens through L = " + std::to_string(m.layers) +
           " layers of width E = " + std::to_string(m.embed) + " need about " + gib(need) +
           " to train, more than this machine's " + gib(have) + " of memory";
  return "";
}

}  // namespace qkv::train
