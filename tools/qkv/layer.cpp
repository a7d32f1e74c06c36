// `qkv layer encoder|decoder`: torch.nn.TransformerEncoderLayer / TransformerDecoderLayer
// (batch_first=True, dropout=0) over .npy files, with the state_dict in a .safetensors file.
#include <memory>
#include <string>

#include "commands.hpp"
#include "inputs.hpp"
#include "numbers.hpp"
#include "output_files.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/nn/transformer_decoder_layer.hpp"
#include "qkv/nn/transformer_encoder_layer.hpp"

namespace qkv::cli {
namespace {

struct layer_args {
  std::string weights, out, activation = "relu";
  std::string src, src_mask, src_key_padding_mask;  // encoder
  std::string tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
      memory_key_padding_mask;  // decoder
  int64_t heads = 0;
  bool norm_first = false;
  float eps = 1e-5f;
  run_options run;
};

nn::transformer_layer_config config_of(const layer_args& a) {
  nn::transformer_layer_config c;
  c.nhead = a.heads;
  c.act = nn::parse_activation(a.activation, "--activation");
  c.norm_first = a.norm_first;
  c.layer_norm_eps = a.eps;
  return c;
}

// The masks of one attention block; `flag_prefix` is "src", "tgt" or "memory".
nn::mha_masks masks_of(const std::string& flag_prefix, const std::string& mask,
                       const std::string& key_padding_mask) {
  nn::mha_masks m;
  mask_file f = read_mask_input("--" + flag_prefix + "-mask", mask);
  m.attn_mask = std::move(f.boolean);
  m.attn_mask_additive = std::move(f.additive);
  if (!key_padding_mask.empty())
    m.key_padding_mask =
        read_bool_input("--" + flag_prefix + "-key-padding-mask", key_padding_mask);
  return m;
}

const std::vector<std::pair<std::string, std::string>> renames = {{"num_heads", "heads"}};

// Loads the Layer from `weights` (every tensor used), writes forward(layer) to --out; the
// library's messages name the command's flags.
template <class Layer, class Forward>
void load_run_write(const layer_args& a, const nn::transformer_layer_config& config,
                    const nn::state_dict& weights, Forward forward) {
  tensor out;
  try {
    nn::state_dict_reader reader(weights, a.weights);
    const Layer layer = Layer::load(reader, "", config);
    reader.finish();
    out = forward(layer);
  } catch (const error& e) {
    throw error(flag_message(e, renames));
  }
  output_files outputs;
  outputs.add("--out", a.out, [&](const std::string& p) { io::write_npy(p, out); });
  outputs.commit();
}

void run_encoder(const layer_args& a) {
  check_output_paths({{"--out", a.out}});
  const nn::transformer_layer_config config = config_of(a);
  const nn::state_dict weights = read_weights("--weights", a.weights);
  const tensor src = read_float_input("--src", a.src);
  const nn::mha_masks masks = masks_of("src", a.src_mask, a.src_key_padding_mask);
  load_run_write<nn::transformer_encoder_layer>(
      a, config, weights, [&](const auto& layer) { return layer.forward(src, masks, a.run).out; });
}

void run_decoder(const layer_args& a) {
  check_output_paths({{"--out", a.out}});
  const nn::transformer_layer_config config = config_of(a);
  const nn::state_dict weights = read_weights("--weights", a.weights);
  const tensor tgt = read_float_input("--tgt", a.tgt);
  const tensor memory = read_float_input("--memory", a.memory);
  const nn::mha_masks tgt_masks = masks_of("tgt", a.tgt_mask, a.tgt_key_padding_mask);
  const nn::mha_masks memory_masks = masks_of("memory", a.memory_mask, a.memory_key_padding_mask);
  load_run_write<nn::transformer_decoder_layer>(a, config, weights, [&](const auto& layer) {
    return layer.forward(tgt, memory, tgt_masks, memory_masks, a.run).out;
  });
}

// The flags both layers share.
void add_common(CLI::App* cmd, layer_args& a) {
  cmd->add_option("--weights", a.weights, "the layer's state_dict (.safetensors)")->required();
  add_int(cmd, "--heads", a.heads, {.lo = 1}, "number of heads (nhead; divides d_model)")
      ->required();
  cmd->add_option("-o,--out", a.out, "output (.npy, written <f4)")->required();
  cmd->add_flag("--norm-first", a.norm_first, "pre-norm (norm_first=True)");
  cmd->add_option("--activation", a.activation, "relu or gelu (erf form)")->capture_default_str();
  add_real(cmd, "--eps", a.eps, {.lo = 0, .lo_closed = false}, "layer_norm_eps (finite, > 0)");
  add_run_options(cmd, a.run);
}

}  // namespace

void add_layer_command(CLI::App& app) {
  CLI::App* layer =
      app.add_subcommand("layer", "A Transformer encoder or decoder layer (PyTorch's)");
  layer->require_subcommand(1);

  auto enc = std::make_shared<layer_args>();
  CLI::App* e =
      layer->add_subcommand("encoder", "torch.nn.TransformerEncoderLayer(batch_first=True)");
  add_common(e, *enc);
  e->add_option("--src", enc->src, "src [B,S,E] (.npy)")->required();
  e->add_option("--src-mask", enc->src_mask, "[S,S]: bool (true = masked out) or float (added)");
  e->add_option("--src-key-padding-mask", enc->src_key_padding_mask, "bool [B,S]: true = padding");
  e->callback([enc] { run_encoder(*enc); });

  auto dec = std::make_shared<layer_args>();
  CLI::App* d =
      layer->add_subcommand("decoder", "torch.nn.TransformerDecoderLayer(batch_first=True)");
  add_common(d, *dec);
  d->add_option("--tgt", dec->tgt, "tgt [B,T,E] (.npy)")->required();
  d->add_option("--memory", dec->memory, "memory [B,S,E] (.npy)")->required();
  d->add_option("--tgt-mask", dec->tgt_mask, "[T,T]: bool (true = masked out) or float (added)");
  d->add_option("--memory-mask", dec->memory_mask, "[T,S]: bool (true = masked out) or float");
  d->add_option("--tgt-key-padding-mask", dec->tgt_key_padding_mask, "bool [B,T]: true = padding");
  d->add_option("--memory-key-padding-mask", dec->memory_key_padding_mask,
                "bool [B,S]: true = padding");
  d->callback([dec] { run_decoder(*dec); });
}

}  // namespace qkv::cli
