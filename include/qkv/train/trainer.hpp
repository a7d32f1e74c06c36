// Training the GPT language model on a text: batches, forward, cross-entropy, backward, gradient
// clipping, AdamW under the warm-up + cosine schedule; held-out evaluation; checkpoints from which
// a resumed run continues bit for bit (at the same thread count).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qkv/nn/adamw.hpp"
#include "qkv/nn/gpt.hpp"
#include "qkv/nn/lr_schedule.hpp"
#include "qkv/train/corpus.hpp"
#include "qkv/train/loss_plot.hpp"
#include "qkv/train/train_config.hpp"

namespace qkv::train {

// The model and vocabulary of a checkpoint written by trainer::save (for generation). Throws
// qkv::error naming the checkpoint and the entry for any bad value.
struct trained_model {
  std::unique_ptr<nn::gpt> model;
  vocabulary vocab;
};
trained_model load_trained_model(const std::string& path);

class trainer {
 public:
  // A fresh run on `text`: vocabulary from the text, model initialised from the seed. Throws
  // qkv::error naming a hyperparameter that breaks its rule (train_config_violation).
  trainer(const train_config& config, const std::string& text);
  // What a resumed run may change: called with the checkpoint's configuration (the model's
  // shapes filled in) before the optimiser and the schedule are built from it. The model
  // (shapes, heads, dropout rates) must stay; the result must pass train_config_violation.
  using resume_adjustment = std::function<void(train_config&)>;
  // Continues the run saved in `path` on `text` (which must be the same text for an exact
  // continuation; it is encoded with the checkpoint's vocabulary). Throws qkv::error naming the
  // checkpoint and the entry for any bad value.
  static std::unique_ptr<trainer> resume(const std::string& path, const std::string& text,
                                         const resume_adjustment& adjust = {});

  // One optimisation step; returns the batch's training loss (nats per token).
  double train_step();
  // Mean loss over the fixed held-out batches, without dropout; also recorded in eval_curve.
  double evaluate();
  // Everything needed to continue, written atomically.
  void save(const std::string& path) const;

  run_options run;  // how the attention kernels run
  int64_t step() const { return step_; }
  const train_config& config() const { return config_; }
  const vocabulary& vocab() const { return vocab_; }
  const nn::gpt& model() const { return *model_; }
  const std::vector<loss_point>& train_curve() const { return train_curve_; }
  const std::vector<loss_point>& eval_curve() const { return eval_curve_; }
  int64_t tokens_per_step() const { return config_.batch * config_.model.context; }

 private:
  trainer() = default;
  void set_text(const std::string& text);
  train_config config_;
  vocabulary vocab_;
  token_split data_;
  std::unique_ptr<nn::gpt> model_;  // heap: the optimiser holds pointers into it
  std::unique_ptr<nn::adamw> optimizer_;
  nn::lr_schedule schedule_;
  int64_t step_ = 0;
  std::vector<loss_point> train_curve_, eval_curve_;
};

}  // namespace qkv::train
