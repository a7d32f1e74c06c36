// The training loop's step, evaluation and checkpoint round trip.
#include "qkv/train/trainer.hpp"

#include <random>

#include "qkv/error.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/nn/cross_entropy.hpp"
#include "qkv/train/checkpoint.hpp"

namespace qkv::train {
namespace {

// Held-out batches use their own stream of the generator, fixed for the whole run.
constexpr uint64_t eval_seed_offset = 0x5eed0e7a1ULL;

nn::lr_schedule schedule_of(const train_config& c) {
  return {c.lr, c.min_lr, c.warmup, c.steps};
}

// The model and vocabulary of a checkpoint whose state has been read, with the dropout rates
// the model is to run with.
trained_model read_model(const io::named_tensors& in, const checkpoint_state& s,
                         const std::string& path, float dropout, float attention_dropout) {
  trained_model m;
  m.vocab = vocabulary::from_symbols(s.vocabulary);
  const nn::state_dict model = with_prefix_removed(in, "model.");
  nn::state_dict_reader reader(model, "");
  try {
    m.model = std::make_unique<nn::gpt>(
        nn::gpt::load(reader, s.config.model.heads, dropout, attention_dropout));
    reader.finish();
  } catch (const error& e) {
    // The reader's rule about the weights, or the layers' own message.
    const std::string why = e.argument() == "weights" ? e.rule() : e.what();
    throw error("checkpoint '" + path + "': the model (tensors model.*): " + why);
  }
  if (m.model->config().vocab != m.vocab.size())
    throw error("checkpoint '" + path + "': the vocabulary (" + std::to_string(m.vocab.size()) +
                " bytes) and model.wte.weight (" + std::to_string(m.model->config().vocab) +
                " rows) disagree");
  return m;
}

}  // namespace

trained_model load_trained_model(const std::string& path) {
  io::metadata meta;
  const io::named_tensors in = io::read_safetensors(path, &meta);
  const checkpoint_state s = load_checkpoint_state(in, meta, path);
  return read_model(in, s, path, 0.0f, 0.0f);  // generation: no dropout
}

void trainer::set_text(const std::string& text) {
  data_ = split_tokens(vocab_.encode(text, "--corpus"), config_.held_out);
  if (static_cast<int64_t>(data_.held_out.size()) < config_.model.context + 2)
    throw error("--corpus: the held-out part (the last " +
                std::to_string(static_cast<int>(100 * config_.held_out)) + "%, " +
                std::to_string(data_.held_out.size()) +
                " bytes) is shorter than the context + 2 = " +
                std::to_string(config_.model.context + 2) + " bytes");
}

trainer::trainer(const train_config& config, const std::string& text)
    : config_(config), vocab_(text), schedule_(schedule_of(config)) {
  config_.model.vocab = vocab_.size();
  if (const std::string why = train_config_violation(config_); !why.empty()) throw error(why);
  set_text(text);
  std::mt19937_64 rng(config_.seed);
  model_ = std::make_unique<nn::gpt>(config_.model, rng);
  optimizer_ = std::make_unique<nn::adamw>(model_->parameters(),
                                           nn::adamw_config{0.9, 0.95, 1e-8, config_.weight_decay});
}

double trainer::train_step() {
  const int64_t B = config_.batch, T = config_.model.context;
  const batch b = sample_batch(data_.train, B, T, config_.seed, static_cast<uint64_t>(step_));
  nn::gpt_step s{true, config_.seed, static_cast<uint64_t>(step_), run};
  std::shared_ptr<nn::gpt_activations> act;
  const tensor logits = model_->forward(b.x, B, T, s, &act);
  const nn::cross_entropy_result ce = nn::cross_entropy(logits, b.y);
  model_->zero_grads();
  model_->backward(*act, ce.dlogits);
  nn::clip_grad_norm(model_->parameters(), config_.clip);
  optimizer_->step(schedule_.at(step_));
  ++step_;
  train_curve_.push_back({step_, ce.loss});
  return ce.loss;
}

double trainer::evaluate() {
  const int64_t B = config_.batch, T = config_.model.context;
  double total = 0.0;
  for (int64_t i = 0; i < config_.eval_batches; ++i) {
    const batch b = sample_batch(data_.held_out, B, T, config_.seed + eval_seed_offset,
                                 static_cast<uint64_t>(i));
    nn::gpt_step s{false, 0, 0, run};
    total += nn::cross_entropy(model_->forward(b.x, B, T, s), b.y).loss;
  }
  const double loss = total / static_cast<double>(config_.eval_batches);
  eval_curve_.push_back({step_, loss});
  return loss;
}

void trainer::save(const std::string& path) const {
  io::named_tensors out;
  io::metadata meta;
  nn::state_dict model, optim;
  model_->save(model);
  optimizer_->save(optim);
  add_with_prefix(out, model, "model.");
  add_with_prefix(out, optim, "optim.");
  store_checkpoint_state(
      {config_, static_cast<uint64_t>(step_), vocab_.symbols(), train_curve_, eval_curve_}, out,
      meta);
  io::write_safetensors(path, out, meta);
}

std::unique_ptr<trainer> trainer::resume(const std::string& path, const std::string& text,
                                         const resume_adjustment& adjust) {
  io::metadata meta;
  const io::named_tensors in = io::read_safetensors(path, &meta);
  checkpoint_state s = load_checkpoint_state(in, meta, path);
  std::unique_ptr<trainer> t(new trainer());
  train_config& c = t->config_;
  trained_model m =
      read_model(in, s, path, s.config.model.dropout, s.config.model.attention_dropout);
  c = s.config;
  c.model = m.model->config();
  if (const std::string why = train_config_violation(c); !why.empty())
    throw error("checkpoint '" + path + "': train." + why);
  if (adjust) {
    const nn::gpt_config model = c.model;
    adjust(c);
    QKV_ASSERT(c.model.vocab == model.vocab && c.model.context == model.context &&
               c.model.embed == model.embed && c.model.layers == model.layers &&
               c.model.heads == model.heads && c.model.dropout == model.dropout &&
               c.model.attention_dropout == model.attention_dropout);
    if (const std::string why = train_config_violation(c); !why.empty()) throw error(why);
  }
  t->step_ = static_cast<int64_t>(s.step);
  t->vocab_ = std::move(m.vocab);
  t->model_ = std::move(m.model);
  t->optimizer_ = std::make_unique<nn::adamw>(t->model_->parameters(),
                                              nn::adamw_config{0.9, 0.95, 1e-8, c.weight_decay});
  const nn::state_dict optim = with_prefix_removed(in, "optim.");
  nn::state_dict_reader optim_reader(optim, path);
  t->optimizer_->load(optim_reader);
  optim_reader.finish();
  t->schedule_ = schedule_of(c);
  t->train_curve_ = std::move(s.train_curve);
  t->eval_curve_ = std::move(s.eval_curve);
  t->set_text(text);
  return t;
}

}  // namespace qkv::train
