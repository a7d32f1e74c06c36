// The GPT backward pass: the forward's lines (gpt.cpp) in reverse, each quoted above its
// derivative. dx is ∂L/∂(the residual stream) and accumulates over both branches of a block.
#include "gpt_activations.hpp"
#include "qkv/nn/dropout.hpp"
#include "residual.hpp"

namespace qkv::nn {
namespace {

// The gradient of a branch before its dropout: dy ⊙ mask (in `scratch`), or dy itself when the
// branch had none.
const tensor& through_dropout(const tensor& dy, const tensor& mask, tensor& scratch) {
  if (mask.values().empty()) return dy;
  scratch = dy;
  apply_dropout(scratch, mask);
  return scratch;
}

}  // namespace

void gpt::backward(const gpt_activations& act, const tensor& dlogits) {
  // logits = LN_f(x_out)·W_head^T
  tensor dx = ln_f_.backward(act.x_out, head_.backward(act.hf, dlogits, d_head_), d_ln_f_);
  for (size_t l = blocks_.size(); l-- > 0;) {
    const gpt_block& b = blocks_[l];
    gpt_block_grads& d = d_blocks_[l];
    const gpt_activations::block& a = act.blocks[l];
    // x_out = x_mid + drop2(FFN(LN2(x_mid)))
    tensor scratch;
    const tensor dh2 = b.mlp.backward(a.h2, a.ffn, through_dropout(dx, a.drop2, scratch), d.mlp);
    b.ln2.backward_add(a.x_mid, dh2, d.ln2, dx);
    // x_mid = x_in + drop1(MHA(h1, h1, h1)), h1 = LN1(x_in): self-attention sums three inputs.
    const tensor dh1 =
        b.attn.backward_self(a.h1, a.attn, through_dropout(dx, a.drop1, scratch), d.attn, a.mha)
            .query;
    b.ln1.backward_add(a.x_in, dh1, d.ln1, dx);
  }
  // x = wte[token] + wpe[position]
  wte_.backward(act.tokens, dx, d_wte_);
  wpe_.backward(act.positions, dx, d_wpe_);
}

}  // namespace qkv::nn
