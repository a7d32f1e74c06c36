# Type stubs of the package qkv (shapes in the docstrings of functional.py and layers.py).
from os import PathLike
from typing import Any, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

ArrayLike = Any  # a float32 (query, key, value: or float16) NumPy array, or any buffer
Array = npt.NDArray[np.float32]
Impl = Literal["auto", "fused", "reference"]
Alignment = Literal["top-left", "bottom-right"]

class Error(ValueError): ...

def scaled_dot_product_attention(
    query: ArrayLike, key: ArrayLike, value: ArrayLike, attn_mask: Optional[ArrayLike] = ...,
    dropout_p: float = ..., is_causal: bool = ..., scale: Optional[float] = ...,
    enable_gqa: bool = ..., *, causal_alignment: Alignment = ...,
    window: Optional[Tuple[Optional[int], Optional[int]]] = ..., softcap: Optional[float] = ...,
    alibi_slopes: Optional[ArrayLike] = ..., sinks: Optional[ArrayLike] = ...,
    return_lse: bool = ..., impl: Impl = ..., threads: int = ...,
    dropout_seed: int = ...) -> Union[Array, Tuple[Array, Array]]: ...
def scaled_dot_product_attention_backward(
    grad_out: ArrayLike, query: ArrayLike, key: ArrayLike, value: ArrayLike, out: ArrayLike,
    lse: ArrayLike, *, attn_mask: Optional[ArrayLike] = ..., dropout_p: float = ...,
    is_causal: bool = ..., scale: Optional[float] = ..., enable_gqa: bool = ...,
    causal_alignment: Alignment = ..., window: Optional[Tuple[Optional[int], Optional[int]]] = ...,
    softcap: Optional[float] = ..., alibi_slopes: Optional[ArrayLike] = ...,
    sinks: Optional[ArrayLike] = ..., impl: Impl = ..., threads: int = ...,
    dropout_seed: int = ...) -> Union[Tuple[Array, Array, Array],
                                      Tuple[Array, Array, Array, Array]]: ...

class MultiheadAttention:
    def __init__(self, state_dict: Union[Mapping[str, ArrayLike], str, PathLike],
                 num_heads: int) -> None: ...
    @property
    def embed_dim(self) -> int: ...
    @property
    def num_heads(self) -> int: ...
    @property
    def kv_heads(self) -> int: ...
    @property
    def head_dim(self) -> int: ...
    def __call__(self, query: ArrayLike, key: Optional[ArrayLike] = ...,
                 value: Optional[ArrayLike] = ..., key_padding_mask: Optional[ArrayLike] = ...,
                 need_weights: bool = ..., attn_mask: Optional[ArrayLike] = ...,
                 average_attn_weights: bool = ..., is_causal: bool = ..., *, impl: Impl = ...,
                 threads: int = ...) -> Tuple[Array, Optional[Array]]: ...

def explain(x: Optional[ArrayLike] = ..., wq: Optional[ArrayLike] = ...,
            wk: Optional[ArrayLike] = ..., wv: Optional[ArrayLike] = ...,
            tokens: Union[None, str, Sequence[str]] = ..., causal: bool = ...,
            title: str = ...) -> dict: ...
