// `qkv mha`: torch.nn.MultiheadAttention(E, H, batch_first=True) over .npy files, with its
// state_dict in a .safetensors file (docs/contracts.md section 5).
#include <memory>
#include <string>

#include "commands.hpp"
#include "inputs.hpp"
#include "numbers.hpp"
#include "output_files.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/nn/multihead_attention.hpp"

namespace qkv::cli {
namespace {

struct mha_args {
  std::string weights, prefix, query, key, value, out, key_padding_mask, attn_mask, attn_weights;
  int64_t heads = 0;
  bool causal = false, per_head = false;
  run_options run;
};

// The tensors of `weights` whose names start with `prefix`, the prefix taken off: one module out
// of a larger model's state_dict (e.g. "layers.0.self_attn.").
nn::state_dict module_weights(const nn::state_dict& weights, const std::string& prefix,
                              const std::string& path) {
  if (prefix.empty()) return weights;
  nn::state_dict module;
  for (const auto& [name, t] : weights)
    if (name.rfind(prefix, 0) == 0) module.emplace(name.substr(prefix.size()), t);
  if (module.empty())
    throw error("--prefix: no tensor of '" + path + "' has a name starting with '" + prefix +
                "' (its first name is '" + (weights.empty() ? "" : weights.begin()->first) + "')");
  return module;
}

// PyTorch's unbatched call: query [Nq,E] (key and value likewise rank 2, the key padding mask
// [Nk]) runs as a batch of one; the outputs lose the batch axis again.
tensor batch_of_one(const tensor& t) {
  shape_t s = t.shape();
  s.insert(s.begin(), 1);
  return t.reshaped(s);
}
tensor unbatched(const tensor& t) {
  return t.reshaped(shape_t(t.shape().begin() + 1, t.shape().end()));
}

void run_mha(const mha_args& a) {
  if (a.key.empty() != a.value.empty())
    throw error("--key/--value: give both (cross-attention) or neither (self-attention)");
  if (a.per_head && a.attn_weights.empty()) throw error("--per-head: needs --attn-weights A.npy");
  check_output_paths({{"--out", a.out}, {"--attn-weights", a.attn_weights}});
  nn::mha_options options;
  options.run = a.run;
  options.masks.is_causal = a.causal;
  if (!a.attn_weights.empty())
    options.need_weights =
        a.per_head ? nn::attention_weights::per_head : nn::attention_weights::averaged;

  const nn::state_dict weights =
      module_weights(read_weights("--weights", a.weights), a.prefix, a.weights);
  tensor query = read_float_input("--query", a.query);
  tensor key = a.key.empty() ? query : read_float_input("--key", a.key);
  tensor value = a.value.empty() ? query : read_float_input("--value", a.value);
  const bool unbatched_call = query.rank() == 2;
  if (unbatched_call) {
    for (const auto& [flag, t] : {std::pair{"--key", &key}, {"--value", &value}})
      if (t->rank() != 2)
        throw error(std::string(flag) + ": expected [Nk, E] like the unbatched query " +
                    to_string(query.shape()) + ", got " + to_string(t->shape()));
    query = batch_of_one(query), key = batch_of_one(key), value = batch_of_one(value);
  }
  if (!a.key_padding_mask.empty()) {
    bool_tensor m = read_bool_input("--key-padding-mask", a.key_padding_mask);
    if (unbatched_call && m.rank() == 1) m = m.reshaped({1, m.shape()[0]});
    options.masks.key_padding_mask = std::move(m);
  }
  mask_file attn = read_mask_input("--attn-mask", a.attn_mask);
  options.masks.attn_mask = std::move(attn.boolean);
  options.masks.attn_mask_additive = std::move(attn.additive);

  nn::mha_result r;
  try {
    nn::state_dict_reader reader(weights, a.weights);
    const nn::multihead_attention mha = nn::multihead_attention::load(reader, "", a.heads);
    reader.finish();
    r = mha.forward(query, key, value, options);
  } catch (const error& e) {
    throw error(flag_message(e, {{"num_heads", "heads"}}));
  }
  if (unbatched_call) {
    r.out = unbatched(r.out);
    if (r.weights) r.weights = unbatched(*r.weights);
  }
  output_files outputs;
  outputs.add("--out", a.out, [&](const std::string& p) { io::write_npy(p, r.out); });
  if (r.weights)
    outputs.add("--attn-weights", a.attn_weights,
                [&](const std::string& p) { io::write_npy(p, *r.weights); });
  outputs.commit();
}

}  // namespace

void add_mha_command(CLI::App& app) {
  auto args = std::make_shared<mha_args>();
  CLI::App* cmd = app.add_subcommand(
      "mha", "Multi-head attention with the weights and masks of torch.nn.MultiheadAttention");
  cmd->add_option("--weights", args->weights,
                  "state_dict (.safetensors): in_proj_weight, in_proj_bias, out_proj.weight, ...")
      ->required();
  cmd->add_option("--prefix", args->prefix,
                  "take the tensors whose names start with this, e.g. layers.0.self_attn.");
  add_int(cmd, "--heads", args->heads, {.lo = 1}, "number of heads H (divides E)")->required();
  cmd->add_option("--query", args->query, "query [B,Nq,E], or [Nq,E] unbatched (.npy)")->required();
  cmd->add_option("-o,--out", args->out, "output [B,Nq,E] ([Nq,E] unbatched; .npy, written <f4)")
      ->required();
  cmd->add_option("--key", args->key, "key [B,Nk,kdim] (cross-attention; default: the query)");
  cmd->add_option("--value", args->value, "value [B,Nk,vdim] (cross-attention)");
  cmd->add_option("--key-padding-mask", args->key_padding_mask,
                  "bool [B,Nk] ([Nk] unbatched): true = ignore this key (PyTorch)");
  cmd->add_option("--attn-mask", args->attn_mask,
                  "bool [Nq,Nk] or [B*H,Nq,Nk]: true = NOT allowed (PyTorch); or float, added");
  cmd->add_flag("--causal", args->causal, "top-left causal, combined with --attn-mask by AND");
  cmd->add_option("--attn-weights", args->attn_weights,
                  "write the head-averaged attention weights [B,Nq,Nk] (need_weights=True)");
  cmd->add_flag("--per-head", args->per_head,
                "--attn-weights per head [B,H,Nq,Nk] (average_attn_weights=False)");
  add_run_options(cmd, args->run);
  cmd->callback([args] { run_mha(*args); });
}

}  // namespace qkv::cli
