// The GPT backward pass: the forward's lines (gpt.cpp) in reverse, each quoted above its
// derivative. dx is ∂L/∂(the residual stream) and accumulates over both branches of a block.
#include "gpt_activations.hpp"
#include "qkv/nn/dropout.hpp"

namespace qkv::nn {

void gpt::backward(const gpt_activations& act, const tensor& dlogits) {
  // logits = LN_f(x_out)·W_head^T
  const tensor dhf = head_.backward(act.hf, dlogits, d_head_);
  tensor dx = detail::layer_norm_backward(act.x_out, dhf, lnf_w_, act.lnf, d_lnf_w_, d_lnf_b_);
  for (size_t l = blocks_.size(); l-- > 0;) {
    const gpt_block& b = blocks_[l];
    gpt_block_grads& d = d_blocks_[l];
    const gpt_activations::block& a = act.blocks[l];
    // x_out = x_mid + drop2(fc2(GELU(fc1(LN2(x_mid)))))
    tensor dbranch = dx;
    if (!a.drop2.values().empty()) apply_dropout(dbranch, a.drop2);
    const tensor dg = b.fc2.backward(a.g, dbranch, d.fc2);
    const tensor dh2 = b.fc1.backward(a.h2, detail::gelu_backward(a.f1, dg), d.fc1);
    dx = detail::add(dx,
                     detail::layer_norm_backward(a.x_mid, dh2, b.ln2_w, a.ln2, d.ln2_w, d.ln2_b));
    // x_mid = x_in + drop1(MHA(h1, h1, h1)), h1 = LN1(x_in): self-attention sums three inputs.
    dbranch = dx;
    if (!a.drop1.values().empty()) apply_dropout(dbranch, a.drop1);
    const mha_input_grads gi = b.attn.backward(a.h1, a.h1, a.h1, a.attn, dbranch, d.attn, act.mha);
    const tensor dh1 = detail::add(detail::add(gi.query, gi.key), gi.value);
    dx =
        detail::add(dx, detail::layer_norm_backward(a.x_in, dh1, b.ln1_w, a.ln1, d.ln1_w, d.ln1_b));
  }
  // x = wte[token] + wpe[position]
  detail::embed_backward(act.tokens, act.B, act.T, dx, d_wte_, d_wpe_);
}

}  // namespace qkv::nn
