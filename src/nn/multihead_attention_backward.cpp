// Backward of nn.MultiheadAttention, the forward's lines in reverse. Legend: B batch, Nq queries,
// Nk keys, E embed dim, H query heads, Hkv key/value heads, hd head dim.
//   out = concat·W_O^T + b_O          ->  d concat = out_proj.backward(concat, d out)
//   O = softmax(Q·K^T/√hd + mask)·V    ->  dQ, dK, dV = sdpa_backward(Q, K, V, O, lse, dO)
//   Q = heads of (query·W_Q^T + b_Q)   ->  d query = q_proj.backward(query, dQ); K, V alike
// The heads are strided views of [B,N,heads·hd] buffers on both sides: O and dO of concat and
// d concat, Q, K, V of the projections, dQ, dK, dV written into [B,N,heads·hd] gradients.
#include <tuple>

#include "heads.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/multihead_attention.hpp"

namespace qkv::nn {

mha_input_grads multihead_attention::backward(const tensor& query, const tensor& key,
                                              const tensor& value, const mha_result& forward,
                                              const tensor& grad_out, mha_grads& grads,
                                              const mha_options& options) const {
  if (grad_out.shape() != forward.out.shape())
    throw error("grad_out", "expected the output's shape " + to_string(forward.out.shape()) +
                                ", got " + to_string(grad_out.shape()));
  if (options.need_weights != attention_weights::none)
    throw error("mha backward: need_weights must be none (the weights are not differentiated)");
  if (options.rope)
    throw error("mha backward: rotary embeddings (rope) are not differentiated yet");
  const int64_t B = query.size(0), Nq = query.size(1), Nk = key.size(1);
  const tensor d_concat = out_proj_.backward(forward.concat, grad_out, grads.out);

  const sdpa_options sdpa = attention_options(options, B, Nq, Nk);  // the forward's
  tensor dq(forward.q.shape()), dk(forward.k.shape()), dv(forward.v.shape());
  mha_input_grads in;
  const std::optional<tensor>& sinks = options.modifiers.sinks;
  if (sinks) in.sinks = tensor(sinks->shape());
  sdpa_saved saved(forward.out_heads(), forward.lse);
  if (forward.row_max.numel()) {
    saved.row_max = tensor_view(forward.row_max);
    saved.row_log_sum = tensor_view(forward.row_log_sum);
  }
  sdpa_backward_into(forward.q_heads(), forward.k_heads(), forward.v_heads(), saved,
                     detail::as_heads(d_concat, num_heads_),
                     {detail::as_heads(dq, num_heads_), detail::as_heads(dk, kv_heads()),
                      detail::as_heads(dv, kv_heads()),
                      sinks ? std::optional(mutable_tensor_view(in.sinks)) : std::nullopt},
                     sdpa);

  in.query = q_proj_.backward(query, dq, grads.q);
  in.key = k_proj_.backward(key, dk, grads.k);
  in.value = v_proj_.backward(value, dv, grads.v);
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
