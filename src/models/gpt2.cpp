// GPT-2 on the library's layers: loading a Hugging Face folder (Conv1D weights [in, out] become
// Linear weights [out, in]; c_attn's three column blocks become the q, k and v projections), the
// forward pass over one sequence and the cached decoding step.
#include "qkv/models/gpt2.hpp"

#include "nn/residual.hpp"
#include "qkv/error.hpp"
#include "qkv/io/atomic_file.hpp"
#include "qkv/nn/state_dict.hpp"

namespace qkv::models {
namespace {

// Columns [c0, c0 + n) of a Conv1D weight w [in, out] with its bias b [out], as a Linear
// ([n, in] weight: the transpose of those columns), so that x·W + b = linear.forward(x).
nn::linear conv1d_columns(const tensor& w, const tensor& b, int64_t c0, int64_t n) {
  const int64_t in = w.size(0), out = w.size(1);
  tensor weight({n, in}), bias({n});
  for (int64_t o = 0; o < n; ++o) {
    for (int64_t i = 0; i < in; ++i) weight[o * in + i] = w[i * out + c0 + o];
    bias[o] = b[c0 + o];
  }
  return nn::linear(std::move(weight), std::move(bias));
}

// The Conv1D `<prefix>weight` [in, out] and `<prefix>bias` [out] as one Linear.
nn::linear take_conv1d(nn::state_dict_reader& r, const std::string& prefix, int64_t in,
                       int64_t out) {
  const tensor w = r.take(prefix + "weight", {in, out});
  return conv1d_columns(w, r.take(prefix + "bias", {out}), 0, out);
}

nn::layer_norm take_layer_norm(nn::state_dict_reader& r, const std::string& prefix, int64_t E,
                               float eps) {
  return nn::layer_norm(r.take(prefix + "weight", {E}), r.take(prefix + "bias", {E}), eps);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

gpt2 gpt2::load(const std::string& dir) {
  const std::string config_path = dir + "/config.json", weights_path = dir + "/model.safetensors";
  const gpt2_config c = parse_gpt2_config(io::read_regular_file(config_path), config_path);
  return from_tensors(c, io::read_safetensors(weights_path), weights_path);
}

gpt2 gpt2::from_tensors(const gpt2_config& c, io::named_tensors tensors,
                        const std::string& source) {
  // GPT2LMHeadModel's files name the blocks under `transformer.`, GPT2Model's without it.
  const std::string prefix = "transformer.";
  bool prefixed = false;
  for (const auto& entry : tensors) prefixed = prefixed || entry.first.starts_with(prefix);
  nn::state_dict dict;
  for (auto& [name, t] : tensors) {
    std::string key = prefixed && name.starts_with(prefix) ? name.substr(prefix.size()) : name;
    // The causal-mask buffers (torch.tril and -1e4) that older files carry: the attention
    // applies its own causal rule.
    if (key.starts_with("h.") &&
        (ends_with(key, ".attn.bias") || ends_with(key, ".attn.masked_bias")))
      continue;
    // A tied head's copy of wte (saved by some exporters) is wte itself.
    if (key == "lm_head.weight" && c.tied_head) continue;
    dict.emplace(std::move(key), std::move(t));
  }
  nn::state_dict_reader r(dict, prefixed ? source + "' (names under 'transformer.')" : source);

  const int64_t V = c.vocab, E = c.embed, F = c.inner;
  gpt2 m;
  m.config_ = c;
  tensor wte = r.take("wte.weight", {V, E});
  m.wpe_ = nn::embedding(r.take("wpe.weight", {c.positions, E}));
  for (int64_t l = 0; l < c.layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    block b;
    b.ln1 = take_layer_norm(r, p + "ln_1.", E, c.layer_norm_eps);
    const tensor w = r.take(p + "attn.c_attn.weight", {E, 3 * E});
    const tensor bias = r.take(p + "attn.c_attn.bias", {3 * E});
    b.attn = nn::multihead_attention(conv1d_columns(w, bias, 0, E), conv1d_columns(w, bias, E, E),
                                     conv1d_columns(w, bias, 2 * E, E),
                                     take_conv1d(r, p + "attn.c_proj.", E, E), c.heads);
    b.ln2 = take_layer_norm(r, p + "ln_2.", E, c.layer_norm_eps);
    b.mlp = nn::feed_forward(take_conv1d(r, p + "mlp.c_fc.", E, F),
                             take_conv1d(r, p + "mlp.c_proj.", F, E), c.act);
    m.blocks_.push_back(std::move(b));
  }
  m.ln_f_ = take_layer_norm(r, "ln_f.", E, c.layer_norm_eps);
  m.head_ = nn::linear(c.tied_head ? wte : r.take("lm_head.weight", {V, E}));
  m.wte_ = nn::embedding(std::move(wte));
  r.finish();
  return m;
}

gpt2_output gpt2::forward(std::span<const int64_t> ids, bool attention_weights, int threads) const {
  const int64_t T = static_cast<int64_t>(ids.size()), V = config_.vocab, H = config_.heads;
  if (T < 1 || T > config_.positions)
    throw error("ids", "expected 1 to n_positions = " + std::to_string(config_.positions) +
                           " tokens, got " + std::to_string(T));
  std::vector<int64_t> positions(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) positions[static_cast<size_t>(t)] = t;
  nn::mha_options options;
  options.masks.is_causal = true;
  options.run.threads = threads;
  if (attention_weights) options.need_weights = nn::attention_weights::per_head;

  gpt2_output out;
  if (attention_weights) out.attention = tensor({config_.layers, H, T, T});
  tensor x = nn::detail::add(wte_.forward(ids, {1, T}), wpe_.forward(positions, {1, T}));
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const block& b = blocks_[l];
    const tensor h = b.ln1.forward(x);
    nn::mha_result a = b.attn.forward(h, h, h, options);
    if (attention_weights)  // [1,H,T,T] into block l's slot
      std::copy(a.weights->values().begin(), a.weights->values().end(),
                out.attention->data() + static_cast<int64_t>(l) * H * T * T);
    x = nn::detail::add(std::move(x), a.out);
    x = nn::detail::add(std::move(x), b.mlp.forward(b.ln2.forward(x)));
  }
  out.logits = head_.forward(ln_f_.forward(x)).reshaped({T, V});
  return out;
}

std::vector<float> gpt2::decode_step(int64_t id, gpt2_cache& cache, int threads) const {
  const int64_t position = cache.length();
  if (position >= config_.positions)
    throw error("decode", "the KV cache holds " + std::to_string(position) +
                              " tokens, n_positions is " + std::to_string(config_.positions));
  if (cache.layers.empty())
    for (const block& b : blocks_)
      cache.layers.push_back(b.attn.make_cache(1, config_.positions, cache.kv_dtype));
  nn::mha_options options;
  options.run.threads = threads;
  tensor x = nn::detail::add(wte_.forward({&id, 1}, {1, 1}), wpe_.forward({&position, 1}, {1, 1}));
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const block& b = blocks_[l];
    x = nn::detail::add(std::move(x),
                        b.attn.forward_step(b.ln1.forward(x), cache.layers[l], options).out);
    x = nn::detail::add(std::move(x), b.mlp.forward(b.ln2.forward(x)));
  }
  const tensor logits = head_.forward(ln_f_.forward(x));
  return std::vector<float>(logits.values().begin(), logits.values().end());
}

int64_t gpt2::step_weight_bytes() const {
  const int64_t E = config_.embed, F = config_.inner, V = config_.vocab;
  // Per block: two LayerNorms (2E each), q/k/v/out projections (4E² + 4E), the MLP (2EF + F + E).
  const int64_t block = 4 * E + 4 * E * E + 4 * E + 2 * E * F + F + E;
  return 4 * (config_.layers * block + 2 * E + V * E + 2 * E);
}

}  // namespace qkv::models
