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

// The hyperparameters, in a fixed order, as one fp32 tensor.
std::vector<float> hyperparameters(const train_config& c) {
  return {static_cast<float>(c.model.heads),
          c.model.dropout,
          static_cast<float>(c.batch),
          static_cast<float>(c.steps),
          c.lr,
          c.min_lr,
          static_cast<float>(c.warmup),
          c.weight_decay,
          c.clip,
          c.held_out,
          static_cast<float>(c.eval_batches),
          c.model.attention_dropout};
}
// Checkpoints written before attention dropout existed lack the last entry (it was 0).
constexpr size_t hyperparameters_before_attention_dropout = 11;

tensor curve_tensor(const std::vector<loss_point>& curve) {
  tensor t({static_cast<int64_t>(curve.size()), 2});
  for (size_t i = 0; i < curve.size(); ++i) {
    t[static_cast<int64_t>(2 * i)] = static_cast<float>(curve[i].step);
    t[static_cast<int64_t>(2 * i + 1)] = static_cast<float>(curve[i].loss);
  }
  return t;
}

std::vector<loss_point> curve_of(const tensor& t) {
  std::vector<loss_point> curve;
  for (int64_t i = 0; i + 1 < t.numel(); i += 2)
    curve.push_back({static_cast<int64_t>(t[i]), t[i + 1]});
  return curve;
}

trained_model read_model(const io::named_tensors& in, const std::string& path, int64_t heads,
                         float dropout, float attention_dropout) {
  trained_model m;
  std::vector<uint8_t> symbols;
  for (const float s : checkpoint_tensor(in, "train.vocabulary", path).values())
    symbols.push_back(static_cast<uint8_t>(s));
  m.vocab = vocabulary::from_symbols(std::move(symbols));
  const nn::state_dict model = with_prefix_removed(in, "model.");
  nn::state_dict_reader reader(model, path);
  m.model = std::make_unique<nn::gpt>(nn::gpt::load(reader, heads, dropout, attention_dropout));
  reader.finish();
  if (m.model->config().vocab != m.vocab.size())
    throw error("checkpoint '" + path + "': the vocabulary and wte.weight disagree");
  return m;
}

}  // namespace

trained_model load_trained_model(const std::string& path) {
  const io::named_tensors in = io::read_safetensors(path);
  const tensor& h = checkpoint_tensor(in, "train.hyperparameters", path);
  return read_model(in, path, static_cast<int64_t>(h[0]), 0.0f, 0.0f);  // generation: no dropout
}

void trainer::set_text(const std::string& text) {
  data_ = split_tokens(vocab_.encode(text, "--corpus"), config_.held_out);
  if (static_cast<int64_t>(data_.held_out.size()) < config_.model.context + 2)
    throw error("--corpus: the held-out part (" + std::to_string(data_.held_out.size()) +
                " characters) is shorter than the context " +
                std::to_string(config_.model.context));
}

trainer::trainer(const train_config& config, const std::string& text)
    : config_(config), vocab_(text), schedule_(schedule_of(config)) {
  config_.model.vocab = vocab_.size();
  set_text(text);
  std::mt19937_64 rng(config_.seed);
  model_ = std::make_unique<nn::gpt>(config_.model, rng);
  optimizer_ = std::make_unique<nn::adamw>(model_->parameters(),
                                           nn::adamw_config{0.9, 0.95, 1e-8, config_.weight_decay});
}

double trainer::train_step() {
  const int64_t B = config_.batch, T = config_.model.context;
  const batch b = sample_batch(data_.train, B, T, config_.seed, static_cast<uint64_t>(step_));
  nn::gpt_step s{true, config_.seed, static_cast<uint64_t>(step_), threads};
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
    nn::gpt_step s{false, 0, 0, threads};
    total += nn::cross_entropy(model_->forward(b.x, B, T, s), b.y).loss;
  }
  const double loss = total / static_cast<double>(config_.eval_batches);
  eval_curve_.push_back({step_, loss});
  return loss;
}

void trainer::save(const std::string& path) const {
  io::named_tensors out;
  nn::state_dict model, optim;
  model_->save(model);
  optimizer_->save(optim);
  add_with_prefix(out, model, "model.");
  add_with_prefix(out, optim, "optim.");
  const std::vector<float> h = hyperparameters(config_);
  out["train.hyperparameters"] = tensor({static_cast<int64_t>(h.size())}, h);
  std::vector<float> symbols(vocab_.symbols().begin(), vocab_.symbols().end());
  out["train.vocabulary"] = tensor({vocab_.size()}, symbols);
  out["train.seed"] = tensor({4}, pack_u64(config_.seed));
  out["train.step"] = tensor({4}, pack_u64(static_cast<uint64_t>(step_)));
  out["train.loss_curve"] = curve_tensor(train_curve_);
  out["train.eval_curve"] = curve_tensor(eval_curve_);
  io::write_safetensors(path, out);
}

std::unique_ptr<trainer> trainer::resume(const std::string& path, const std::string& text) {
  const io::named_tensors in = io::read_safetensors(path);
  std::unique_ptr<trainer> t(new trainer());
  const tensor& h = checkpoint_tensor(in, "train.hyperparameters", path);
  if (h.numel() != static_cast<int64_t>(hyperparameters({}).size()) &&
      h.numel() != static_cast<int64_t>(hyperparameters_before_attention_dropout))
    throw error("checkpoint '" + path + "': train.hyperparameters has the wrong length");
  train_config& c = t->config_;
  c.model.heads = static_cast<int64_t>(h[0]);
  c.model.dropout = h[1];
  c.batch = static_cast<int64_t>(h[2]);
  c.steps = static_cast<int64_t>(h[3]);
  c.lr = h[4];
  c.min_lr = h[5];
  c.warmup = static_cast<int64_t>(h[6]);
  c.weight_decay = h[7];
  c.clip = h[8];
  c.held_out = h[9];
  c.eval_batches = static_cast<int64_t>(h[10]);
  c.model.attention_dropout = h.numel() > 11 ? h[11] : 0.0f;
  c.seed = unpack_u64(in, "train.seed");
  t->step_ = static_cast<int64_t>(unpack_u64(in, "train.step"));
  trained_model m = read_model(in, path, c.model.heads, c.model.dropout, c.model.attention_dropout);
  t->vocab_ = std::move(m.vocab);
  t->model_ = std::move(m.model);
  c.model = t->model_->config();
  t->optimizer_ = std::make_unique<nn::adamw>(t->model_->parameters(),
                                              nn::adamw_config{0.9, 0.95, 1e-8, c.weight_decay});
  const nn::state_dict optim = with_prefix_removed(in, "optim.");
  nn::state_dict_reader optim_reader(optim, path);
  t->optimizer_->load(optim_reader);
  optim_reader.finish();
  t->schedule_ = schedule_of(c);
  t->train_curve_ = curve_of(checkpoint_tensor(in, "train.loss_curve", path));
  t->eval_curve_ = curve_of(checkpoint_tensor(in, "train.eval_curve", path));
  t->set_text(text);
  return t;
}

}  // namespace qkv::train
