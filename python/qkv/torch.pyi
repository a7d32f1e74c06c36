# Type stubs of qkv.torch (shapes in the docstring of torch.py).
from typing import Literal, Optional, Tuple

import torch

def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = ..., dropout_p: float = ..., is_causal: bool = ...,
    scale: Optional[float] = ..., enable_gqa: bool = ..., *,
    causal_alignment: Literal["top-left", "bottom-right"] = ...,
    window: Optional[Tuple[Optional[int], Optional[int]]] = ..., softcap: Optional[float] = ...,
    alibi_slopes: Optional[torch.Tensor] = ..., sinks: Optional[torch.Tensor] = ...,
    impl: Literal["auto", "fused", "reference"] = ..., threads: int = ...,
    dropout_seed: int = ...) -> torch.Tensor: ...
