// `qkv mha`: torch.nn.MultiheadAttention(E, H, batch_first=True) over .npy files, with its
// state_dict in a .safetensors file (DESIGN section 5).
#include <memory>
#include <string>

#include "commands.hpp"
#include "layer_inputs.hpp"
#include "output_files.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/nn/multihead_attention.hpp"

namespace qkv::cli {
namespace {

struct mha_args {
  std::string weights, query, key, value, out, key_padding_mask, attn_mask, attn_weights,
      impl = "auto";
  int64_t heads = 0;
  bool causal = false, per_head = false;
  int threads = 0;
};

void run_mha(const mha_args& a) {
  if (a.key.empty() != a.value.empty())
    throw error("--key/--value: give both (cross-attention) or neither (self-attention)");
  if (a.per_head && a.attn_weights.empty()) throw error("--per-head: needs --attn-weights A.npy");
  nn::mha_options options;
  options.impl = parse_sdpa_impl(a.impl, "--impl");
  if (a.threads < 0)
    throw error("--threads: must be >= 0 (0 = default), got " + std::to_string(a.threads));
  options.threads = a.threads;
  options.masks.is_causal = a.causal;
  if (!a.attn_weights.empty())
    options.need_weights =
        a.per_head ? nn::attention_weights::per_head : nn::attention_weights::averaged;

  const nn::state_dict weights = read_weights("--weights", a.weights);
  const tensor query = read_float_input("--query", a.query);
  const tensor key = a.key.empty() ? query : read_float_input("--key", a.key);
  const tensor value = a.value.empty() ? query : read_float_input("--value", a.value);
  if (!a.key_padding_mask.empty())
    options.masks.key_padding_mask = read_bool_input("--key-padding-mask", a.key_padding_mask);
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
    throw error(to_flag_message(e.what(), {{"num_heads", "heads"}}));
  }
  output_files outputs;
  outputs.add(a.out, [&](const std::string& p) { io::write_npy(p, r.out); });
  if (r.weights)
    outputs.add(a.attn_weights, [&](const std::string& p) { io::write_npy(p, *r.weights); });
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
  cmd->add_option("--heads", args->heads, "number of heads H (divides E)")->required();
  cmd->add_option("--query", args->query, "query X [B,Nq,E] (.npy)")->required();
  cmd->add_option("-o,--out", args->out, "output [B,Nq,E] (.npy, written <f4)")->required();
  cmd->add_option("--key", args->key, "key [B,Nk,kdim] (cross-attention; default: the query)");
  cmd->add_option("--value", args->value, "value [B,Nk,vdim] (cross-attention)");
  cmd->add_option("--key-padding-mask", args->key_padding_mask,
                  "bool [B,Nk]: true = ignore this key (PyTorch)");
  cmd->add_option("--attn-mask", args->attn_mask,
                  "bool [Nq,Nk] or [B*H,Nq,Nk]: true = NOT allowed (PyTorch); or float, added");
  cmd->add_flag("--causal", args->causal, "top-left causal, combined with --attn-mask by AND");
  cmd->add_option("--attn-weights", args->attn_weights,
                  "write the head-averaged attention weights [B,Nq,Nk] (need_weights=True)");
  cmd->add_flag("--per-head", args->per_head,
                "--attn-weights per head [B,H,Nq,Nk] (average_attn_weights=False)");
  cmd->add_option("--impl", args->impl, "attention kernel: reference, fused or auto")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "threads (0 = QKV_NUM_THREADS, else all cores)")
      ->capture_default_str();
  cmd->callback([args] { run_mha(*args); });
}

}  // namespace qkv::cli
