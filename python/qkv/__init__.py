"""qkv: Transformer attention in C++, from Python.

    import numpy as np, qkv
    q = k = v = np.random.rand(1, 8, 128, 64).astype(np.float32)   # [B, H, N, d]
    out = qkv.scaled_dot_product_attention(q, k, v, is_causal=True)  # [1, 8, 128, 64]

scaled_dot_product_attention and its backward take NumPy arrays (or any buffer) with the
arguments of torch.nn.functional.scaled_dot_product_attention; qkv.torch holds the
torch.autograd.Function; MultiheadAttention and explain mirror the layer and `qkv explain`.
Bad input raises qkv.Error (a ValueError) whose message names the argument, the rule and the
shapes, or TypeError for an unsupported dtype.
"""

from ._qkv import Error
from .functional import scaled_dot_product_attention, scaled_dot_product_attention_backward
from .layers import MultiheadAttention, explain

__all__ = ["Error", "MultiheadAttention", "explain", "scaled_dot_product_attention",
           "scaled_dot_product_attention_backward"]
