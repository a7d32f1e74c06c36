"""Scaled dot-product attention on NumPy arrays, with the arguments of
torch.nn.functional.scaled_dot_product_attention.

Legend: B batch, Hq query heads, Hkv key/value heads (Hq a multiple of Hkv), Nq queries,
Nk keys, d query/key head dim, dv value head dim.
"""

from . import _qkv


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, *,
                                 causal_alignment="top-left", window=None, softcap=None,
                                 alibi_slopes=None, sinks=None, return_lse=False, impl="auto",
                                 threads=0, dropout_seed=0):
    """softmax(scale * query @ key^T + bias) @ value, by qkv's kernels.

    query [B,Hq,Nq,d], key [B,Hkv,Nk,d], value [B,Hkv,Nk,dv]: float32 or float16 NumPy arrays
    or any object with the buffer protocol (a CPU torch tensor works too); any strides. float16
    inputs are read by the kernels as they are, in place (no float32 copy), each value widened
    exactly; the outputs stay float32. bfloat16 has no NumPy dtype, so
    it cannot come in from Python (round to float16, or pass float32).
    Returns out [B,Hq,Nq,dv] (a NumPy float32 array), or (out, lse) with lse [B,Hq,Nq] when
    return_lse is true (the natural-log logsumexp of each score row; what the backward needs).

    attn_mask: bool (True = this query may attend this key) or float32 (added to the scaled
        scores; -inf hides), of rank 2 to 4, broadcasting to [B,Hq,Nq,Nk] by NumPy's rules.
    dropout_p: drops attention weights with this probability (0 <= p < 1), scaling the kept ones
        by 1/(1-p); the mask is a pure function of dropout_seed and the score's position, so a
        seed reproduces the output and the backward regenerates the same mask. PyTorch's own
        random stream is not reproduced.
    is_causal: query i sees keys j <= i (causal_alignment "top-left", PyTorch's), or
        j <= i + Nk - Nq ("bottom-right", decoding with a KV cache). Unlike PyTorch, a mask and
        is_causal may be given together: a key is visible only if both allow it.
    scale: default 1/sqrt(d); must be finite and > 0.
    enable_gqa: allow Hkv < Hq (grouped-query attention: query head h uses kv head
        h // (Hq // Hkv)); as in PyTorch, differing head counts are refused without it.
    window: (left, right): key j is visible only if i + o - left <= j <= i + o + right, with
        o = Nk - Nq; -1 or None leaves a side unbounded.
    softcap: c > 0; scores become c * tanh(s / c).
    alibi_slopes: float32 [Hq]; s -= slope_h * |i + o - j| (constants, no gradient).
    sinks: float32 [Hq]; one extra logit per head in each softmax denominator, carrying no value.
        The modifiers apply in the order softcap, ALiBi, masks and window, sinks.
    impl: "auto" (the fused kernel), "fused" or "reference" (float64 accumulation).
    threads: 0 = QKV_NUM_THREADS, else every core.

    A query row that sees no key gets 0 (and lse -inf), never NaN. Bad input raises qkv.Error
    (a ValueError) naming the argument, the rule and the shapes, or TypeError for a dtype other
    than float32 (or float16, for query, key and value). The GIL is released while the kernel
    runs.
    """
    options = _qkv.SdpaOptions(attn_mask, dropout_p, is_causal, scale, enable_gqa,
                               causal_alignment, window, softcap, alibi_slopes, sinks, impl,
                               threads, dropout_seed)
    return _qkv.sdpa_forward(query, key, value, options, return_lse)


def scaled_dot_product_attention_backward(grad_out, query, key, value, out, lse, *,
                                          attn_mask=None, dropout_p=0.0, is_causal=False,
                                          scale=None, enable_gqa=False,
                                          causal_alignment="top-left", window=None,
                                          softcap=None, alibi_slopes=None, sinks=None,
                                          impl="auto", threads=0, dropout_seed=0):
    """Gradients of L = sum(out * grad_out) with respect to query, key and value.

    grad_out [B,Hq,Nq,dv] (float32); query, key, value as given to the forward (float32 or
    float16, read in place like the forward's); out [B,Hq,Nq,dv] and
    lse [B,Hq,Nq] as returned by scaled_dot_product_attention(..., return_lse=True); the keyword
    arguments must be the forward's (the same dropout_p and dropout_seed regenerate its mask).
    Returns (dq [B,Hq,Nq,d], dk [B,Hkv,Nk,d], dv [B,Hkv,Nk,dv]), and dsinks [Hq] as a fourth
    element when sinks are given; dk and dv are summed over the query heads that share a kv
    head. Rows that saw no key get zero gradients.
    """
    options = _qkv.SdpaOptions(attn_mask, dropout_p, is_causal, scale, enable_gqa,
                               causal_alignment, window, softcap, alibi_slopes, sinks, impl,
                               threads, dropout_seed)
    return _qkv.sdpa_backward(grad_out, query, key, value, out, lse, options)
