// A decoder-only (GPT-2 style, pre-norm) character-level language model and its backward pass:
//   x = wte[token] + wpe[position]
//   per block: x += drop(MHA(LN1(x), causal));  x += drop(W2·GELU(W1·LN2(x)))
//   logits = LN_f(x)·W_head^T
// Dropout is on the residual branches and (attention_dropout) on the attention weights, in
// training only. Built from the library's layers
// (Embedding, LayerNorm, MultiheadAttention, FeedForward, Linear) and their backward passes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/nn/embedding.hpp"
#include "qkv/nn/feed_forward.hpp"
#include "qkv/nn/kv_cache.hpp"
#include "qkv/nn/layer_norm.hpp"
#include "qkv/nn/linear.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "qkv/nn/parameter.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

struct gpt_config {
  int64_t vocab = 0;      // V
  int64_t context = 128;  // T_max, the positions wpe covers
  int64_t embed = 128;    // E
  int64_t heads = 4;      // H
  int64_t layers = 4;     // L
  float dropout = 0.0f;   // p of the residual-branch dropout, in training
  // p of the dropout on the attention weights, in training (a separate p; its mask per layer
  // and step comes from the counter-based generator, as the residual masks do)
  float attention_dropout = 0.0f;
};

struct gpt_block {
  layer_norm ln1, ln2;
  multihead_attention attn;
  feed_forward mlp;  // E -> 4E -> E, GELU
};
struct gpt_block_grads {
  layer_norm_grads ln1, ln2;
  mha_grads attn;
  feed_forward_grads mlp;
};

// Activations one forward pass keeps for the backward (opaque outside gpt*.cpp).
struct gpt_activations;

// Where the randomness of a training step comes from (dropout masks), and how attention runs.
struct gpt_step {
  bool training = false;
  uint64_t seed = 0, step = 0;
  run_options run = {};
};

// A decoding session: one MHA KV cache per layer (include/qkv/nn/kv_cache.hpp), each storing
// K/V as kv_dtype (f32, f16 or bf16).
struct gpt_kv_cache {
  std::vector<kv_cache> layers;
  dtype kv_dtype = dtype::f32;
  int64_t length() const { return layers.empty() ? 0 : layers.front().length(); }
};

// One block's projected per-head queries, keys and values, each [H,T,hd] (gpt::attention_heads).
struct gpt_attention_heads {
  tensor q, k, v;
};

class gpt {
 public:
  // GPT-2's initialisation: N(0, 0.02) embeddings and linear weights, zero biases, unit norms.
  gpt(const gpt_config& config, std::mt19937_64& rng);
  // From a state_dict written by save (config from the shapes, heads given). Throws qkv::error.
  static gpt load(state_dict_reader& reader, int64_t heads, float dropout = 0.0f,
                  float attention_dropout = 0.0f);
  void save(state_dict& dict) const;

  // tokens [B,T] (row-major, ids < V, T <= context) -> logits [B·T, V]. When `keep` is given it
  // receives what backward needs.
  tensor forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const gpt_step& step,
                 std::shared_ptr<gpt_activations>* keep = nullptr) const;
  // Accumulates into the gradients the backward of L with ∂L/∂logits = dlogits [B·T,V].
  void backward(const gpt_activations& act, const tensor& dlogits);

  // The logits [V] of the next token after appending `token` to the cache (one decoding step
  // attending over the cached keys and values: bottom-right causal by construction).
  std::vector<float> decode_step(int32_t token, gpt_kv_cache& cache, int threads = 0) const;
  // What block `layer`'s attention attends with when the model reads the one sequence `tokens`
  // (inference, causal): its Q, K, V heads (gpt_attention.cpp). Throws qkv::error naming layer.
  gpt_attention_heads attention_heads(const std::vector<int32_t>& tokens, int64_t layer) const;

  std::vector<parameter> parameters();
  void zero_grads();
  const gpt_config& config() const { return config_; }

 private:
  gpt() = default;
  void make_grads();
  gpt_config config_;
  embedding wte_, wpe_;
  std::vector<gpt_block> blocks_;
  layer_norm ln_f_;
  linear head_;
  // Gradients, shaped like the parameters.
  tensor d_wte_, d_wpe_;
  std::vector<gpt_block_grads> d_blocks_;
  layer_norm_grads d_ln_f_;
  linear_grads d_head_;
};

}  // namespace qkv::nn
