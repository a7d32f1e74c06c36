"""qkv's fused attention inside PyTorch: a torch.autograd.Function on CPU float32 tensors.

    import torch, qkv.torch
    out = qkv.torch.scaled_dot_product_attention(q, k, v, is_causal=True)   # differentiable
    out.sum().backward()

The forward runs qkv's fused kernel and keeps its logsumexp; the backward runs qkv's fused
backward on it. Tensors cross without copies where their strides allow (torch.Tensor.numpy()
shares memory). Importing qkv does not import torch; importing qkv.torch does.

Legend: B batch, Hq query heads, Hkv key/value heads, Nq queries, Nk keys, d and dv head dims.
"""

import torch as _torch

from . import functional as _functional


def _array(name, tensor):
    if tensor is None:
        return None
    if tensor.device.type != "cpu":
        raise ValueError(f"{name}: qkv runs on the CPU, got a tensor on {tensor.device}")
    if tensor.is_floating_point() and tensor.dtype != _torch.float32:
        # float32 only: the Function returns float32 gradients, which must match its inputs
        # (float16 arrays go through qkv.scaled_dot_product_attention).
        dtype = str(tensor.dtype).replace("torch.", "")
        raise TypeError(f"{name}: expected float32, got {dtype} (convert with .float())")
    return tensor.detach().numpy()


class _Attention(_torch.autograd.Function):
    """forward(ctx, options, query, key, value, attn_mask, alibi_slopes, sinks) -> out; options:
    the other keywords of qkv.scaled_dot_product_attention, given to the backward as they are.
    Differentiable in query, key, value and sinks."""

    @staticmethod
    def forward(ctx, options, query, key, value, attn_mask, alibi_slopes, sinks):
        tensors = dict(query=query, key=key, value=value, attn_mask=attn_mask,
                       alibi_slopes=alibi_slopes, sinks=sinks)
        arrays = {name: _array(name, t) for name, t in tensors.items()}
        out, lse = _functional.scaled_dot_product_attention(**arrays, return_lse=True,
                                                            **options)
        out, lse = _torch.from_numpy(out), _torch.from_numpy(lse)
        ctx.options = options
        ctx.constants = attn_mask, alibi_slopes
        ctx.save_for_backward(query, key, value, out, lse, sinks)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, out, lse, sinks = ctx.saved_tensors
        attn_mask, alibi_slopes = ctx.constants
        grads = _functional.scaled_dot_product_attention_backward(
            _array("grad_out", grad_out), _array("query", query), _array("key", key),
            _array("value", value), out.numpy(), lse.numpy(),
            attn_mask=_array("attn_mask", attn_mask),
            alibi_slopes=_array("alibi_slopes", alibi_slopes), sinks=_array("sinks", sinks),
            **ctx.options)
        dq, dk, dv = (_torch.from_numpy(g) for g in grads[:3])
        dsinks = _torch.from_numpy(grads[3]) if sinks is not None else None
        return None, dq, dk, dv, None, None, dsinks


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, *,
                                 causal_alignment="top-left", window=None, softcap=None,
                                 alibi_slopes=None, sinks=None, impl="auto", threads=0,
                                 dropout_seed=0):
    """torch.nn.functional.scaled_dot_product_attention by qkv's fused kernels, with autograd.

    query [B,Hq,Nq,d], key [B,Hkv,Nk,d], value [B,Hkv,Nk,dv]: CPU float32 tensors; returns
    out [B,Hq,Nq,dv], differentiable with respect to query, key, value and sinks [Hq] (not
    attn_mask nor alibi_slopes [Hq], which are constants). The arguments mean what they mean in
    qkv.scaled_dot_product_attention (PyTorch's meanings; a mask and is_causal may be combined). dropout_p applies qkv's attention dropout, seeded by
    dropout_seed (PyTorch's random stream is not reproduced); the backward uses the same mask.
    """
    options = dict(dropout_p=dropout_p, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa,
                   causal_alignment=causal_alignment, window=window, softcap=softcap, impl=impl,
                   threads=threads, dropout_seed=dropout_seed)
    return _Attention.apply(options, query, key, value, attn_mask, alibi_slopes, sinks)
