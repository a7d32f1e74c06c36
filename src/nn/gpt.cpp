// The GPT model: construction, state_dict names and the forward pass (equations in gpt.hpp).
// Names: wte.weight [V,E], wpe.weight [T,E], h.<l>.ln_1.{weight,bias}, h.<l>.attn.* (PyTorch's
// nn.MultiheadAttention names), h.<l>.ln_2.*, h.<l>.mlp.fc1.*, h.<l>.mlp.fc2.*, ln_f.*,
// lm_head.weight [V,E].
#include "qkv/nn/gpt.hpp"

#include "gpt_activations.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/dropout.hpp"

namespace qkv::nn {
namespace {

constexpr float ln_eps = 1e-5f;

tensor normal_tensor(const shape_t& shape, std::mt19937_64& rng) {
  std::normal_distribution<float> n(0.0f, 0.02f);
  tensor t(shape);
  for (float& x : t.values()) x = n(rng);
  return t;
}

linear normal_linear(int64_t out, int64_t in, bool bias, std::mt19937_64& rng) {
  return linear(normal_tensor({out, in}, rng),
                bias ? std::optional<tensor>(tensor({out})) : std::nullopt);
}

// Dropout streams: one per (step, layer, branch), so masks never repeat within a run.
uint64_t dropout_stream(uint64_t step, size_t layer, int branch) {
  return step * 4096 + layer * 2 + static_cast<uint64_t>(branch);
}

}  // namespace

gpt::gpt(const gpt_config& c, std::mt19937_64& rng) : config_(c) {
  if (c.vocab < 1 || c.context < 1 || c.embed < 1 || c.heads < 1 || c.embed % c.heads != 0 ||
      c.layers < 1)
    throw error("gpt: need vocab, context, embed, layers >= 1 and heads dividing embed, got V = " +
                std::to_string(c.vocab) + ", T = " + std::to_string(c.context) +
                ", E = " + std::to_string(c.embed) + ", H = " + std::to_string(c.heads) +
                ", L = " + std::to_string(c.layers));
  const int64_t E = c.embed;
  wte_ = normal_tensor({c.vocab, E}, rng);
  wpe_ = normal_tensor({c.context, E}, rng);
  for (int64_t l = 0; l < c.layers; ++l) {
    gpt_block b{tensor({E}, 1.0f), tensor({E}), tensor({E}, 1.0f), tensor({E}), {}, {}, {}};
    linear q = normal_linear(E, E, true, rng), k = normal_linear(E, E, true, rng),
           v = normal_linear(E, E, true, rng), o = normal_linear(E, E, true, rng);
    b.attn = multihead_attention(std::move(q), std::move(k), std::move(v), std::move(o), c.heads);
    b.fc1 = normal_linear(4 * E, E, true, rng);
    b.fc2 = normal_linear(E, 4 * E, true, rng);
    blocks_.push_back(std::move(b));
  }
  lnf_w_ = tensor({E}, 1.0f);
  lnf_b_ = tensor({E});
  head_ = normal_linear(c.vocab, E, false, rng);
  make_grads();
}

gpt gpt::load(state_dict_reader& reader, int64_t heads, float dropout) {
  gpt m;
  const shape_t& wte = reader.shape_of("wte.weight", 2);
  const shape_t& wpe = reader.shape_of("wpe.weight", 2);
  m.config_ = {wte[0], wpe[0], wte[1], heads, 0, dropout};
  const int64_t E = wte[1];
  m.wte_ = reader.take("wte.weight", wte);
  m.wpe_ = reader.take("wpe.weight", {wpe[0], E});
  while (reader.contains("h." + std::to_string(m.blocks_.size()) + ".ln_1.weight")) {
    const std::string p = "h." + std::to_string(m.blocks_.size()) + ".";
    gpt_block b;
    b.ln1_w = reader.take(p + "ln_1.weight", {E});
    b.ln1_b = reader.take(p + "ln_1.bias", {E});
    b.attn = multihead_attention::load(reader, p + "attn.", heads);
    b.ln2_w = reader.take(p + "ln_2.weight", {E});
    b.ln2_b = reader.take(p + "ln_2.bias", {E});
    b.fc1 = linear::load(reader, p + "mlp.fc1.", 4 * E, E);
    b.fc2 = linear::load(reader, p + "mlp.fc2.", E, 4 * E);
    m.blocks_.push_back(std::move(b));
  }
  m.config_.layers = static_cast<int64_t>(m.blocks_.size());
  if (m.blocks_.empty()) reader.fail("no transformer blocks (h.0.ln_1.weight missing)");
  m.lnf_w_ = reader.take("ln_f.weight", {E});
  m.lnf_b_ = reader.take("ln_f.bias", {E});
  m.head_ = linear::load(reader, "lm_head.", wte[0], E);
  m.make_grads();
  return m;
}

void gpt::save(state_dict& dict) const {
  dict["wte.weight"] = wte_;
  dict["wpe.weight"] = wpe_;
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    const gpt_block& b = blocks_[l];
    dict[p + "ln_1.weight"] = b.ln1_w;
    dict[p + "ln_1.bias"] = b.ln1_b;
    b.attn.save(dict, p + "attn.");
    dict[p + "ln_2.weight"] = b.ln2_w;
    dict[p + "ln_2.bias"] = b.ln2_b;
    b.fc1.save(dict, p + "mlp.fc1.");
    b.fc2.save(dict, p + "mlp.fc2.");
  }
  dict["ln_f.weight"] = lnf_w_;
  dict["ln_f.bias"] = lnf_b_;
  head_.save(dict, "lm_head.");
}

void gpt::make_grads() {
  d_wte_ = tensor(wte_.shape());
  d_wpe_ = tensor(wpe_.shape());
  d_lnf_w_ = tensor(lnf_w_.shape());
  d_lnf_b_ = tensor(lnf_b_.shape());
  d_blocks_.clear();
  for (const gpt_block& b : blocks_)
    d_blocks_.push_back({tensor(b.ln1_w.shape()), tensor(b.ln1_b.shape()), tensor(b.ln2_w.shape()),
                         tensor(b.ln2_b.shape()), b.attn.make_grads(), b.fc1.make_grads(),
                         b.fc2.make_grads()});
  d_head_ = head_.make_grads();
}

std::vector<parameter> gpt::parameters() {
  std::vector<parameter> params{{"wte.weight", &wte_, &d_wte_, true},
                                {"wpe.weight", &wpe_, &d_wpe_, false}};
  const auto append = [&](std::vector<parameter> more) {
    for (parameter& p : more) params.push_back(std::move(p));
  };
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    gpt_block& b = blocks_[l];
    gpt_block_grads& d = d_blocks_[l];
    append({{p + "ln_1.weight", &b.ln1_w, &d.ln1_w, false},
            {p + "ln_1.bias", &b.ln1_b, &d.ln1_b, false},
            {p + "ln_2.weight", &b.ln2_w, &d.ln2_w, false},
            {p + "ln_2.bias", &b.ln2_b, &d.ln2_b, false}});
    append(b.attn.parameters(p + "attn.", d.attn));
    append(b.fc1.parameters(p + "mlp.fc1.", d.fc1));
    append(b.fc2.parameters(p + "mlp.fc2.", d.fc2));
  }
  append({{"ln_f.weight", &lnf_w_, &d_lnf_w_, false}, {"ln_f.bias", &lnf_b_, &d_lnf_b_, false}});
  append(head_.parameters("lm_head.", d_head_));
  return params;
}

void gpt::zero_grads() {
  nn::zero_grads(parameters());
}

tensor gpt::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const gpt_step& step,
                    std::shared_ptr<gpt_activations>* keep) const {
  if (T < 1 || T > config_.context || B < 1 || static_cast<int64_t>(tokens.size()) != B * T)
    throw error("tokens: expected B·T ids with 1 <= T <= context = " +
                std::to_string(config_.context) + ", got " + std::to_string(tokens.size()) +
                " for B = " + std::to_string(B) + ", T = " + std::to_string(T));
  for (const int32_t id : tokens)
    if (id < 0 || id >= config_.vocab)
      throw error("tokens: id " + std::to_string(id) + " outside the vocabulary [0, " +
                  std::to_string(config_.vocab) + ")");
  auto act = std::make_shared<gpt_activations>();
  act->tokens = tokens;
  act->B = B;
  act->T = T;
  act->mha.masks.is_causal = true;
  act->mha.threads = step.threads;
  act->mha.impl = step.impl;
  const bool drop = step.training && config_.dropout > 0.0f;

  tensor x = detail::embed(tokens, B, T, wte_, wpe_);
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const gpt_block& b = blocks_[l];
    gpt_activations::block& a = act->blocks.emplace_back();
    a.x_in = std::move(x);
    a.h1 = detail::layer_norm_forward(a.x_in, b.ln1_w, b.ln1_b, ln_eps, a.ln1);
    a.attn = b.attn.forward(a.h1, a.h1, a.h1, act->mha);
    tensor branch = a.attn.out;
    if (drop) {
      a.drop1 =
          dropout_mask(branch.shape(), config_.dropout, step.seed, dropout_stream(step.step, l, 0));
      apply_dropout(branch, a.drop1);
    }
    a.x_mid = detail::add(a.x_in, branch);
    a.h2 = detail::layer_norm_forward(a.x_mid, b.ln2_w, b.ln2_b, ln_eps, a.ln2);
    a.f1 = b.fc1.forward(a.h2);
    a.g = detail::gelu_forward(a.f1);
    branch = b.fc2.forward(a.g);
    if (drop) {
      a.drop2 =
          dropout_mask(branch.shape(), config_.dropout, step.seed, dropout_stream(step.step, l, 1));
      apply_dropout(branch, a.drop2);
    }
    x = detail::add(a.x_mid, branch);
  }
  act->x_out = std::move(x);
  act->hf = detail::layer_norm_forward(act->x_out, lnf_w_, lnf_b_, ln_eps, act->lnf);
  tensor logits = head_.forward(act->hf).reshaped({B * T, config_.vocab});
  if (keep) *keep = std::move(act);
  return logits;
}

}  // namespace qkv::nn
