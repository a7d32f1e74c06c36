// Backward of nn.MultiheadAttention, the forward's lines in reverse. Legend: B batch, Nq queries,
// Nk keys, E embed dim, H query heads, Hkv key/value heads, hd head dim.
//   out = concat·W_O^T + b_O          ->  d concat = out_proj.backward(concat, d out)
//   O = softmax(Q·K^T/√hd + mask)·V    ->  dQ, dK, dV = sdpa_backward(Q, K, V, O, lse, dO)
//   Q = heads of (query·W_Q^T + b_Q)   ->  d query = q_proj.backward(query, dQ); K, V alike
// The heads are strided views of [B,N,heads·hd] buffers on both sides: O and dO of concat and
// d concat, Q, K, V of the projections, dQ, dK, dV written into [B,N,heads·hd] gradients (or
// into the column blocks of one [B,N,C] buffer when the forward stacked the projections).
#include <tuple>

#include "elementwise.hpp"
#include "heads.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/multihead_attention.hpp"

namespace qkv::nn {

multihead_attention::attention_grads multihead_attention::attention_backward(
    const mha_result& forward, const tensor& grad_out, mha_grads& grads,
    const mha_options& options) const {
  if (grad_out.shape() != forward.concat.shape())
    throw error("grad_out", "expected the output's shape " + to_string(forward.concat.shape()) +
                                ", got " + to_string(grad_out.shape()));
  if (options.need_weights != attention_weights::none)
    throw error("mha backward: need_weights must be none (the weights are not differentiated)");
  if (options.rope)
    throw error("mha backward: rotary embeddings (rope) are not differentiated yet");
  const int64_t B = forward.concat.size(0), Nq = forward.concat.size(1);
  const int64_t Nk = forward.k_heads().size(2);
  const tensor d_concat = out_proj_.backward(forward.concat, grad_out, grads.out);

  const sdpa_options sdpa = attention_options(options, B, Nq, Nk);  // the forward's
  attention_grads d;
  if (forward.qkv.rank()) {
    d.dqkv = tensor(forward.qkv.shape());
  } else {
    d.dq = tensor(forward.q.shape());
    d.dk = tensor(forward.k.shape());
    d.dv = tensor(forward.v.shape());
  }
  if (options.modifiers.sinks) d.dsinks = tensor(options.modifiers.sinks->shape());
  const auto heads = [&](detail::projection which) {
    return detail::projection_heads(d.dq, d.dk, d.dv, d.dqkv, num_heads_, kv_heads(), head_dim(),
                                    which);
  };
  sdpa_saved saved(forward.out_heads(), forward.lse);
  if (forward.row_max.numel()) {
    saved.row_max = tensor_view(forward.row_max);
    saved.row_log_sum = tensor_view(forward.row_log_sum);
  }
  sdpa_backward_into(
      forward.q_heads(), forward.k_heads(), forward.v_heads(), saved,
      detail::as_heads(d_concat, num_heads_),
      {heads(detail::projection::q), heads(detail::projection::k), heads(detail::projection::v),
       options.modifiers.sinks ? std::optional(mutable_tensor_view(d.dsinks)) : std::nullopt},
      sdpa);
  return d;
}

mha_input_grads multihead_attention::backward(const tensor& query, const tensor& key,
                                              const tensor& value, const mha_result& forward,
                                              const tensor& grad_out, mha_grads& grads,
                                              const mha_options& options) const {
  attention_grads d = attention_backward(forward, grad_out, grads, options);
  mha_input_grads in;
  in.sinks = std::move(d.dsinks);
  if (forward.qkv.rank() == 0) {
    in.query = q_proj_.backward(query, d.dq, grads.q);
    in.key = k_proj_.backward(key, d.dk, grads.k);
    in.value = v_proj_.backward(value, d.dv, grads.v);
    return in;
  }
  // The forward stacked the projections (query, key and value were one tensor): each input's
  // gradient from its column block of dQKV.
  const int64_t C = d.dqkv.size(2),
                first[] = {0, embed_dim(), embed_dim() + k_proj_.out_features()};
  const auto input_grad = [&](const linear& proj, const tensor& x, int64_t block, linear_grads& g) {
    const int64_t M = x.numel() / proj.in_features();
    tensor dx(x.shape());
    proj.accumulate_grads(x.data(), d.dqkv.data() + first[block], M, C, g);
    proj.input_grad_into(d.dqkv.data() + first[block], M, C, dx.data());
    return dx;
  };
  in.query = input_grad(q_proj_, query, 0, grads.q);
  in.key = input_grad(k_proj_, key, 1, grads.k);
  in.value = input_grad(v_proj_, value, 2, grads.v);
  return in;
}

mha_input_grads multihead_attention::backward_self(const tensor& x, const mha_result& forward,
                                                   const tensor& grad_out, mha_grads& grads,
                                                   const mha_options& options) const {
  if (forward.qkv.rank() == 0) {
    mha_input_grads in = backward(x, x, x, forward, grad_out, grads, options);
    in.query = detail::add(detail::add(std::move(in.query), in.key), in.value);
    in.key = in.value = tensor();
    return in;
  }
  attention_grads d = attention_backward(forward, grad_out, grads, options);
  mha_input_grads in;
  in.sinks = std::move(d.dsinks);
  // dW_Q += dQ^T·x (likewise K, V) from dQKV's column blocks, and
  // dx = dQ·W_Q + dK·W_K + dV·W_V = dQKV·W_QKV, one product over the stacked weights.
  const int64_t C = d.dqkv.size(2), E = embed_dim(), M = x.numel() / E;
  const int64_t kv = k_proj_.out_features();
  q_proj_.accumulate_grads(x.data(), d.dqkv.data(), M, C, grads.q);
  k_proj_.accumulate_grads(x.data(), d.dqkv.data() + E, M, C, grads.k);
  v_proj_.accumulate_grads(x.data(), d.dqkv.data() + E + kv, M, C, grads.v);
  in.query = tensor(x.shape());
  stacked_projection().input_grad_into(d.dqkv.data(), M, C, in.query.data());
  return in;
}

mha_grads multihead_attention::make_grads() const {
  return {q_proj_.make_grads(), k_proj_.make_grads(), v_proj_.make_grads(), out_proj_.make_grads()};
}

std::vector<parameter> multihead_attention::parameters(const std::string& prefix,
                                                       mha_grads& grads) {
  std::vector<parameter> params;
  for (auto [layer, g, name] :
       {std::tuple{&q_proj_, &grads.q, "q_proj."}, std::tuple{&k_proj_, &grads.k, "k_proj."},
        std::tuple{&v_proj_, &grads.v, "v_proj."}, std::tuple{&out_proj_, &grads.out, "out_proj."}})
    for (parameter& p : layer->parameters(prefix + name, *g)) params.push_back(std::move(p));
  return params;
}

}  // namespace qkv::nn
