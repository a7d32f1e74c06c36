// GPT-2 (Radford et al. 2019) from a Hugging Face model folder, run on the library's own layers:
//   x = wte[id] + wpe[position]
//   per block: x += MHA(LN1(x), causal);  x += W2·GELU_tanh(W1·LN2(x))
//   logits = LN_f(x)·wte^T            (the LM head is tied to the token embedding)
// Inference only: no dropout, no training. Letters: T tokens, V vocabulary, E width, H heads,
// L blocks, F the MLP's inner width.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qkv/io/safetensors.hpp"
#include "qkv/nn/embedding.hpp"
#include "qkv/nn/feed_forward.hpp"
#include "qkv/nn/kv_cache.hpp"
#include "qkv/nn/layer_norm.hpp"
#include "qkv/nn/linear.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "qkv/tensor.hpp"

namespace qkv::models {

// What config.json says, under the hub's key names (in comments).
struct gpt2_config {
  int64_t vocab = 0;                               // vocab_size
  int64_t positions = 0;                           // n_positions: the longest sequence wpe covers
  int64_t embed = 0;                               // n_embd (E)
  int64_t heads = 0;                               // n_head (H), divides E
  int64_t layers = 0;                              // n_layer (L)
  int64_t inner = 0;                               // n_inner (F); null in the file means 4E
  float layer_norm_eps = 1e-5f;                    // layer_norm_epsilon
  nn::activation act = nn::activation::gelu_tanh;  // activation_function
  bool tied_head = true;                           // tie_word_embeddings
};

// Parses and checks the text of a config.json: model_type "gpt2"; positive sizes with n_head
// dividing n_embd; activation_function gelu_new (or its aliases gelu_pytorch_tanh, and gelu,
// relu); a finite positive layer_norm_epsilon; and none of the options that change the math
// (scale_attn_weights false, scale_attn_by_inverse_layer_idx, add_cross_attention). Throws
// qkv::error naming `source` and the key otherwise.
gpt2_config parse_gpt2_config(const std::string& text, const std::string& source);

// The result of a forward pass over one sequence.
struct gpt2_output {
  tensor logits;                    // [T,V]
  std::optional<tensor> attention;  // [L,H,T,T] softmax weights, when asked for
};

// A decoding session: one KV cache per block, each storing K/V as kv_dtype (f32, f16 or bf16).
struct gpt2_cache {
  std::vector<nn::kv_cache> layers;
  dtype kv_dtype = dtype::f32;
  int64_t length() const { return layers.empty() ? 0 : layers.front().length(); }
};

class gpt2 {
 public:
  // Reads DIR/config.json and DIR/model.safetensors. Tensor names are GPT2Model's state_dict
  // names (wte.weight, wpe.weight, h.N.{ln_1,attn.c_attn,attn.c_proj,ln_2,mlp.c_fc,mlp.c_proj}.*,
  // ln_f.*), all with or all without the `transformer.` prefix; Conv1D weights are [in, out];
  // F32, F16 or BF16. The causal-mask buffers h.N.attn.bias and h.N.attn.masked_bias are ignored.
  // A missing file or tensor, a wrong shape or an unexpected tensor: qkv::error naming it.
  static gpt2 load(const std::string& dir);
  // The same from a config and the tensors of a model.safetensors (named for messages by
  // `source`).
  static gpt2 from_tensors(const gpt2_config& config, io::named_tensors tensors,
                           const std::string& source);

  // ids [T], 1 <= T <= positions, each in [0, V). With attention_weights the output holds every
  // block's per-head attention weights (the reference attention kernel computes them).
  gpt2_output forward(std::span<const int64_t> ids, bool attention_weights = false,
                      int threads = 0) const;

  // The logits [V] of the token after `id`, appended to `cache` at position cache.length()
  // (which must be < positions): one step of n tokens costs O(n) projections, not O(n²).
  std::vector<float> decode_step(int64_t id, gpt2_cache& cache, int threads = 0) const;

  const gpt2_config& config() const { return config_; }
  // Bytes of fp32 weights one decoding step reads: every block, ln_f and the [V,E] head (the
  // embeddings contribute one row each).
  int64_t step_weight_bytes() const;

 private:
  struct block {
    nn::layer_norm ln1, ln2;
    nn::multihead_attention attn;
    nn::feed_forward mlp;
  };
  gpt2() = default;
  gpt2_config config_;
  nn::embedding wte_, wpe_;
  std::vector<block> blocks_;
  nn::layer_norm ln_f_;
  nn::linear head_;  // weight [V,E]: a copy of wte's, as Linear owns its weight
};

}  // namespace qkv::models
