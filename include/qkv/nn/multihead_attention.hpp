// nn.MultiheadAttention(E, H, batch_first=True): project queries, keys and values, read E as
// H heads of hd = E/H, attend per head through qkv's dispatcher, concatenate, project out.
// GQA (Hkv < H key/value heads, each shared by H/Hkv query heads) is an option beyond PyTorch.
#pragma once

#include <optional>
#include <random>
#include <string>

#include "qkv/attention.hpp"
#include "qkv/nn/kv_cache.hpp"
#include "qkv/nn/linear.hpp"
#include "qkv/nn/mha_masks.hpp"
#include "qkv/nn/positional_encoding.hpp"
#include "qkv/nn/state_dict.hpp"
#include "qkv/score_modifiers.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

struct mha_config {
  int64_t embed_dim = 0;  // E
  int64_t num_heads = 1;  // H, divides E
  int64_t kv_heads = 0;   // Hkv: 0 = H; fewer (dividing H) = GQA
  int64_t kdim = 0;       // the key input's last dim: 0 = E
  int64_t vdim = 0;       // the value input's last dim: 0 = E
  bool bias = true;       // in_proj_bias and out_proj.bias
};

// need_weights: none, head-averaged ([B,Nq,Nk], PyTorch's default) or per head ([B,H,Nq,Nk]).
enum class attention_weights { none, averaged, per_head };

struct mha_options {
  mha_masks masks = {};
  attention_weights need_weights = attention_weights::none;
  run_options run = {};  // the attention kernel (need_weights: the reference) and threads
  // Rotary position embeddings applied to the projected queries and keys (positions from 0,
  // or from the cache length in forward_step): an option beyond nn.MultiheadAttention.
  std::optional<rope_config> rope = std::nullopt;
  // Prefixes the mask names in error messages (a layer passes "src_" for src_key_padding_mask).
  std::string mask_prefix = {};
  // Dropout on the attention weights (sdpa_options::dropout_p, dropout_seed): 0 = off. The
  // backward must be given the same p and seed. need_weights reports the un-dropped P.
  float dropout_p = 0.0f;
  uint64_t dropout_seed = 0;
  // Score modifiers, as sdpa_options has them (docs/attention.md#score-modifiers): a sliding
  // window (forward_step reads only the window's cached keys), softcap, ALiBi slopes [H] and
  // sinks [H] (backward returns their gradient in mha_input_grads::sinks).
  score_modifiers modifiers = {};
};

// The output and the activations a backward pass will need. The heads are never copied apart:
// the projections keep PyTorch's [B,N,heads·hd] layout (head h in columns h·hd..(h+1)·hd), the
// attention reads them as strided [B,heads,N,hd] views and writes its per-head outputs straight
// into `concat` [B,Nq,H·hd], the out projection's input.
struct mha_result {
  tensor out;                     // [B,Nq,E]
  std::optional<tensor> weights;  // the softmax probabilities, when asked for
  tensor q, k, v;                 // projections (after RoPE): [B,Nq,E], [B,Nk,Hkv·hd] twice
  // Self-attention (query, key and value the same tensor) projects once, with the three
  // weights stacked: qkv [B,N,E + 2·Hkv·hd] holds Q, K, V side by side, and q, k, v are empty.
  tensor qkv;
  tensor concat;  // concat_h(head_h) [B,Nq,E]
  tensor lse;     // [B,H,Nq]
  // What the backward recomputes the softmax from (sdpa_result::row_max, row_log_sum), [B,H,Nq]
  // each: exact even under additive masks of -1e9 or finfo(float32).min.
  tensor row_max, row_log_sum;
  int64_t heads = 0, kv_heads = 0;

  // [B,H,Nq,hd], [B,Hkv,Nk,hd], [B,Hkv,Nk,hd], [B,H,Nq,hd]: views of q, k, v (or of qkv's
  // column blocks) and concat.
  tensor_view q_heads() const;
  tensor_view k_heads() const;
  tensor_view v_heads() const;
  tensor_view out_heads() const;
};

// Gradients of the projections' parameters (multihead_attention_backward.cpp).
struct mha_grads {
  linear_grads q, k, v, out;
};
// Gradients of the inputs: for self-attention (query = key = value) dx is their sum.
struct mha_input_grads {
  tensor query, key, value;
  tensor sinks;  // [H] with mha_options::sinks, else empty
};

class multihead_attention {
 public:
  multihead_attention() = default;
  // PyTorch's initialisation: Xavier-uniform input projections, zero biases.
  multihead_attention(const mha_config& config, std::mt19937_64& rng);
  // From projections: q_proj [E,E], k_proj [Hkv·hd,kdim], v_proj [Hkv·hd,vdim], out_proj [E,E].
  multihead_attention(linear q_proj, linear k_proj, linear v_proj, linear out_proj,
                      int64_t num_heads);

  // From PyTorch's state_dict names under `prefix`: in_proj_weight [3E,E] or q_proj_weight,
  // k_proj_weight, v_proj_weight; in_proj_bias; out_proj.weight, out_proj.bias. E, kdim, vdim
  // and Hkv come from the shapes; every name and shape is checked.
  static multihead_attention load(state_dict_reader& reader, const std::string& prefix,
                                  int64_t num_heads);
  // Writes the same names (packed in_proj_weight when kdim = vdim = E and Hkv = H).
  void save(state_dict& dict, const std::string& prefix) const;

  // query [B,Nq,E], key [B,Nk,kdim], value [B,Nk,vdim] -> out [B,Nq,E].
  mha_result forward(const tensor& query, const tensor& key, const tensor& value,
                     const mha_options& options = {}) const;

  // Backward of forward(query, key, value, options) = `forward` for L = sum(out ⊙ grad_out):
  // accumulates the parameters' gradients into grads and returns the inputs' gradients. The
  // attention goes through qkv::sdpa_backward with the same options. Not with need_weights.
  mha_input_grads backward(const tensor& query, const tensor& key, const tensor& value,
                           const mha_result& forward, const tensor& grad_out, mha_grads& grads,
                           const mha_options& options = {}) const;
  // The backward of self-attention, forward(x, x, x, options): as backward, but it returns
  // ∂L/∂x, the sum of the three inputs' gradients, in `query` (key and value stay empty). After
  // a forward that projected Q, K and V at once it is one matrix product.
  mha_input_grads backward_self(const tensor& x, const mha_result& forward, const tensor& grad_out,
                                mha_grads& grads, const mha_options& options = {}) const;
  mha_grads make_grads() const;
  // The four projections' parameters under `<prefix>q_proj.` ... `<prefix>out_proj.`.
  std::vector<parameter> parameters(const std::string& prefix, mha_grads& grads);

  // A cache for forward_step: B sequences, room for `capacity` positions, K/V stored as `type`.
  kv_cache make_cache(int64_t B, int64_t capacity, dtype type = dtype::f32) const;
  // Incremental self-attention decoding: x [B,n,E] holds the next n tokens; their keys and
  // values are appended to `cache` and each token attends to every cached token up to itself
  // (bottom-right causal). N one-token steps give the rows of forward(x, x, x) with is_causal.
  // The score modifiers apply as in forward(); with a window, a step reads only the window's
  // cached keys. Masks, need_weights and dropout are not supported here (a qkv::error).
  mha_result forward_step(const tensor& x, kv_cache& cache, const mha_options& options = {}) const;

  int64_t embed_dim() const { return out_proj_.out_features(); }
  int64_t num_heads() const { return num_heads_; }
  int64_t kv_heads() const { return k_proj_.out_features() / head_dim(); }
  int64_t head_dim() const { return embed_dim() / num_heads_; }
  const linear& q_proj() const { return q_proj_; }
  const linear& k_proj() const { return k_proj_; }
  const linear& v_proj() const { return v_proj_; }
  const linear& out_proj() const { return out_proj_; }

 private:
  // The inputs' names in messages.
  struct projection_names {
    const char *query, *key, *value;
  };
  // r.q, r.k, r.v, or r.qkv when query, key and value are one tensor: the projections (RoPE
  // from position rope_start when asked), and room for r.concat and r.lse.
  void project(const tensor& query, const tensor& key, const tensor& value,
               const projection_names& names, int64_t rope_start, const mha_options& options,
               mha_result& r) const;
  // The sdpa options of one forward (and of its backward): causal flag, masks for B batches and
  // Nq x Nk scores, kernel, threads, attention dropout, score modifiers.
  // Q, K and V's projections as one: weights [E + 2·Hkv·hd, E] stacked, biases likewise.
  linear stacked_projection() const;
  // dQ, dK, dV of the attention's backward (into one buffer shaped like forward.qkv when the
  // forward stacked them), and the sinks' gradient; grads.out accumulated.
  struct attention_grads {
    tensor dq, dk, dv, dqkv, dsinks;
  };
  attention_grads attention_backward(const mha_result& forward, const tensor& grad_out,
                                     mha_grads& grads, const mha_options& options) const;
  sdpa_options attention_options(const mha_options& options, int64_t B, int64_t Nq,
                                 int64_t Nk) const;

  linear q_proj_, k_proj_, v_proj_, out_proj_;
  int64_t num_heads_ = 1;
};

}  // namespace qkv::nn
