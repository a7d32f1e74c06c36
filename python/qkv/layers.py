"""torch.nn.MultiheadAttention from a state_dict, and the explain walkthrough, on NumPy arrays.

Legend: B batch, Nq queries, Nk keys, E embedding dim, H heads.
"""

import json

from . import _qkv


class MultiheadAttention:
    """torch.nn.MultiheadAttention(E, H, batch_first=True) with the weights of its state_dict.

    state_dict: a mapping of PyTorch's names to float32 arrays (in_proj_weight [3E,E],
    in_proj_bias [3E], out_proj.weight [E,E], out_proj.bias [E]; or q_proj_weight,
    k_proj_weight, v_proj_weight when key/value dims differ), e.g.
    {k: v.numpy() for k, v in module.state_dict().items()}, or the path of a .safetensors file
    holding them. Every name and shape is checked (load_state_dict(strict=True)).
    """

    def __init__(self, state_dict, num_heads):
        self._layer = _qkv.MultiheadAttentionLayer(state_dict, num_heads)

    embed_dim = property(lambda self: self._layer.embed_dim, doc="E")
    num_heads = property(lambda self: self._layer.num_heads, doc="H")
    kv_heads = property(lambda self: self._layer.kv_heads, doc="key/value heads (H unless GQA)")
    head_dim = property(lambda self: self._layer.head_dim, doc="E // H")

    def __call__(self, query, key=None, value=None, key_padding_mask=None, need_weights=True,
                 attn_mask=None, average_attn_weights=True, is_causal=False, *, impl="auto",
                 threads=0):
        """(attn_output [B,Nq,E], attn_weights or None), as the PyTorch module's forward.

        query [B,Nq,E]; key [B,Nk,kdim] and value [B,Nk,vdim] (default: the query, i.e.
        self-attention). Masks with PyTorch's meanings: key_padding_mask bool [B,Nk], True =
        ignore this key; attn_mask bool [Nq,Nk] or [B*H,Nq,Nk], True = NOT allowed, or float32
        added to the scores; is_causal hides later keys, combined with the masks by AND.
        need_weights: also the softmax weights, averaged over heads [B,Nq,Nk] or per head
        [B,H,Nq,Nk] (average_attn_weights=False); computed by the reference kernel.
        """
        return self._layer.forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                   average_attn_weights, is_causal, impl, threads)


def explain(x=None, wq=None, wk=None, wv=None, tokens=None, causal=False, title=""):
    """The attention walkthrough as a dict: the object `qkv explain --format json` prints.

    Without arrays: the embedded "Write a poem" example. Else single-head self-attention of
    x [N,d_model] with wq, wk [d_k,d_model] and wv [d_v,d_model] (nn.Linear's weight layout):
    Q = x @ wq^T, K = x @ wk^T, V = x @ wv^T, weights = softmax(Q @ K^T / sqrt(d_k)).
    tokens: N labels (a list, or one string split on whitespace); default t0, t1, ...
    causal: token i sees tokens j <= i. The keys: "title", "tokens", "scale", "causal",
    "steps" {"X", "Q", "K", "V", "scores", "scaled", "weights", "output"} (lists of rows), ...
    """
    if isinstance(tokens, str):
        tokens = tokens.split()
    return json.loads(_qkv.explain_json(x, wq, wk, wv, list(tokens or []), causal, title))
