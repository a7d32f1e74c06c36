// The GPT model: construction, state_dict names and the forward pass (equations in gpt.hpp).
// Names: wte.weight [V,E], wpe.weight [T,E], h.<l>.ln_1.*, h.<l>.attn.* (PyTorch's
// nn.MultiheadAttention names), h.<l>.ln_2.*, h.<l>.mlp.linear1.*, h.<l>.mlp.linear2.*, ln_f.*,
// lm_head.weight [V,E].
#include "qkv/nn/gpt.hpp"

#include "gpt_activations.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/counter_rng.hpp"
#include "qkv/nn/dropout.hpp"
#include "residual.hpp"

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

// The seed of a block's attention-dropout mask: the draw at index 2^64 - 1 of the block's first
// residual stream, an index no residual mask reaches.
uint64_t attention_dropout_seed(uint64_t seed, uint64_t step, size_t layer) {
  return random_bits(seed, dropout_stream(step, layer, 0), ~uint64_t{0});
}

}  // namespace

gpt::gpt(const gpt_config& c, std::mt19937_64& rng) : config_(c) {
  // Each size named on its own, so that a caller can say which of its flags is wrong.
  for (const auto& [name, value] :
       {std::pair{"vocab", c.vocab}, std::pair{"context", c.context}, std::pair{"embed", c.embed},
        std::pair{"layers", c.layers}, std::pair{"heads", c.heads}})
    if (value < 1) throw error(name, "must be >= 1, got " + std::to_string(value));
  if (c.embed % c.heads != 0)
    throw error("heads", "H = " + std::to_string(c.heads) +
                             " must divide the embedding width E = " + std::to_string(c.embed) +
                             " (embed)");
  if (!(c.attention_dropout >= 0.0f && c.attention_dropout < 1.0f))
    throw error("attention_dropout",
                "must be in [0, 1), got " + std::to_string(c.attention_dropout));
  const int64_t E = c.embed;
  wte_ = embedding(normal_tensor({c.vocab, E}, rng));
  wpe_ = embedding(normal_tensor({c.context, E}, rng));
  for (int64_t l = 0; l < c.layers; ++l) {
    gpt_block b{layer_norm(E, ln_eps), layer_norm(E, ln_eps), {}, {}};
    linear q = normal_linear(E, E, true, rng), k = normal_linear(E, E, true, rng),
           v = normal_linear(E, E, true, rng), o = normal_linear(E, E, true, rng);
    b.attn = multihead_attention(std::move(q), std::move(k), std::move(v), std::move(o), c.heads);
    linear fc1 = normal_linear(4 * E, E, true, rng), fc2 = normal_linear(E, 4 * E, true, rng);
    b.mlp = feed_forward(std::move(fc1), std::move(fc2), activation::gelu);
    blocks_.push_back(std::move(b));
  }
  ln_f_ = layer_norm(E, ln_eps);
  head_ = normal_linear(c.vocab, E, false, rng);
  make_grads();
}

gpt gpt::load(state_dict_reader& reader, int64_t heads, float dropout, float attention_dropout) {
  gpt m;
  m.wte_ = embedding::load(reader, "wte.");
  m.wpe_ = embedding::load(reader, "wpe.");
  const int64_t E = m.wte_.embedding_dim();
  if (m.wpe_.embedding_dim() != E) reader.fail("wpe.weight and wte.weight differ in width");
  m.config_ = {m.wte_.num_embeddings(), m.wpe_.num_embeddings(), E, heads, 0, dropout,
               attention_dropout};
  while (reader.contains("h." + std::to_string(m.blocks_.size()) + ".ln_1.weight")) {
    const std::string p = "h." + std::to_string(m.blocks_.size()) + ".";
    gpt_block b;
    b.ln1 = layer_norm::load(reader, p + "ln_1.", E, ln_eps);
    b.attn = multihead_attention::load(reader, p + "attn.", heads);
    b.ln2 = layer_norm::load(reader, p + "ln_2.", E, ln_eps);
    b.mlp = feed_forward::load(reader, p + "mlp.", activation::gelu);
    m.blocks_.push_back(std::move(b));
  }
  m.config_.layers = static_cast<int64_t>(m.blocks_.size());
  if (m.blocks_.empty()) reader.fail("no transformer blocks (h.0.ln_1.weight missing)");
  m.ln_f_ = layer_norm::load(reader, "ln_f.", E, ln_eps);
  m.head_ = linear::load(reader, "lm_head.", m.config_.vocab, E);
  m.make_grads();
  return m;
}

void gpt::save(state_dict& dict) const {
  wte_.save(dict, "wte.");
  wpe_.save(dict, "wpe.");
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    blocks_[l].ln1.save(dict, p + "ln_1.");
    blocks_[l].attn.save(dict, p + "attn.");
    blocks_[l].ln2.save(dict, p + "ln_2.");
    blocks_[l].mlp.save(dict, p + "mlp.");
  }
  ln_f_.save(dict, "ln_f.");
  head_.save(dict, "lm_head.");
}

void gpt::make_grads() {
  d_wte_ = tensor(wte_.weight().shape());
  d_wpe_ = tensor(wpe_.weight().shape());
  d_blocks_.clear();
  for (const gpt_block& b : blocks_)
    d_blocks_.push_back(
        {b.ln1.make_grads(), b.ln2.make_grads(), b.attn.make_grads(), b.mlp.make_grads()});
  d_ln_f_ = ln_f_.make_grads();
  d_head_ = head_.make_grads();
}

std::vector<parameter> gpt::parameters() {
  std::vector<parameter> params{wte_.as_parameter("wte.", d_wte_, true),
                                wpe_.as_parameter("wpe.", d_wpe_, false)};
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    gpt_block& b = blocks_[l];
    gpt_block_grads& d = d_blocks_[l];
    append_parameters(params, b.ln1.parameters(p + "ln_1.", d.ln1));
    append_parameters(params, b.attn.parameters(p + "attn.", d.attn));
    append_parameters(params, b.ln2.parameters(p + "ln_2.", d.ln2));
    append_parameters(params, b.mlp.parameters(p + "mlp.", d.mlp));
  }
  append_parameters(params, ln_f_.parameters("ln_f.", d_ln_f_));
  append_parameters(params, head_.parameters("lm_head.", d_head_));
  return params;
}

void gpt::zero_grads() {
  nn::zero_grads(parameters());
}

tensor gpt::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const gpt_step& step,
                    std::shared_ptr<gpt_activations>* keep) const {
  if (T < 1 || T > config_.context || B < 1 || static_cast<int64_t>(tokens.size()) != B * T)
    throw error("tokens",
                "expected B·T ids with 1 <= T <= context = " + std::to_string(config_.context) +
                    ", got " + std::to_string(tokens.size()) + " for B = " + std::to_string(B) +
                    ", T = " + std::to_string(T));
  auto act = std::make_shared<gpt_activations>();
  act->tokens.assign(tokens.begin(), tokens.end());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) act->positions.push_back(t);
  mha_options mha;
  mha.masks.is_causal = true;
  mha.run = step.run;
  if (step.training) mha.dropout_p = config_.attention_dropout;
  const bool drop = step.training && config_.dropout > 0.0f;

  tensor x = detail::add(wte_.forward(act->tokens, {B, T}), wpe_.forward(act->positions, {B, T}));
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const gpt_block& b = blocks_[l];
    gpt_activations::block& a = act->blocks.emplace_back();
    a.x_in = std::move(x);
    a.h1 = b.ln1.forward(a.x_in);
    a.mha = mha;
    if (mha.dropout_p > 0.0f) a.mha.dropout_seed = attention_dropout_seed(step.seed, step.step, l);
    a.attn = b.attn.forward(a.h1, a.h1, a.h1, a.mha);
    // The backward needs the attention's inputs, not its output: the branch takes its buffer.
    tensor branch = std::move(a.attn.out);
    if (drop) {
      a.drop1 =
          dropout_mask(branch.shape(), config_.dropout, step.seed, dropout_stream(step.step, l, 0));
      apply_dropout(branch, a.drop1);
    }
    a.x_mid = detail::add(std::move(branch), a.x_in);
    a.h2 = b.ln2.forward(a.x_mid);
    branch = b.mlp.forward(a.h2, a.ffn);
    if (drop) {
      a.drop2 =
          dropout_mask(branch.shape(), config_.dropout, step.seed, dropout_stream(step.step, l, 1));
      apply_dropout(branch, a.drop2);
    }
    x = detail::add(std::move(branch), a.x_mid);
  }
  act->x_out = std::move(x);
  act->hf = ln_f_.forward(act->x_out);
  tensor logits = head_.forward(act->hf).reshaped({B * T, config_.vocab});
  if (keep) *keep = std::move(act);
  return logits;
}

}  // namespace qkv::nn
